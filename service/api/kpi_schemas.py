"""Marshmallow schemas of the KPI endpoint: the query, and the report with every figure."""
from __future__ import annotations

from marshmallow import Schema, fields, validate


class KpiQuery(Schema):
    setting = fields.Str(validate=validate.Length(max=100), metadata={
        "description": "One setting, e.g. acute_hospital; every setting the user covers if left out"})
    first = fields.Str(data_key="from", metadata={
        "format": "date", "description": "First day, YYYY-MM-DD (default: 29 days before `to`)"})
    last = fields.Str(data_key="to", metadata={
        "format": "date", "description": "Last day, YYYY-MM-DD (default: today)"})


class KpiFigureOut(Schema):
    group = fields.Str()
    measure = fields.Str()
    value = fields.Float(allow_none=True, metadata={"description": "None when the group has nothing to measure"})
    unit = fields.Str()
    numerator = fields.Float(allow_none=True)
    denominator = fields.Float(allow_none=True)


class KpiOut(Schema):
    key = fields.Str()
    title = fields.Str()
    how_counted = fields.Str(attribute="counted")
    population = fields.Int(metadata={"description": "How many cases, stays, notices or tasks were counted"})
    population_unit = fields.Str(attribute="unit")
    chart_measure = fields.Str(attribute="chart")
    target = fields.Float(allow_none=True)
    total_group = fields.Str(attribute="total", allow_none=True,
                             metadata={"description": "The group adding up the others"})
    figures = fields.List(fields.Nested(KpiFigureOut))


class SettingKpisOut(Schema):
    setting = fields.Str()
    kpis = fields.List(fields.Nested(KpiOut))


class KpiPeriodOut(Schema):
    first_day = fields.Date(data_key="from")
    last_day = fields.Date(data_key="to")


class KpiReportOut(Schema):
    period = fields.Nested(KpiPeriodOut)
    settings = fields.List(fields.Nested(SettingKpisOut))
    choices = fields.List(fields.Str(), metadata={"description": "Every setting the user may choose"})
