// Import BPMN files the way bpmn.io and Camunda Modeler do (bpmn-moddle), and report
// every warning: unknown elements, unresolved references, anything a modeler would choke on.
// Usage: node moddle_import.mjs FILE...   Prints one JSON object per file.
import { readFile } from "node:fs/promises";
import { BpmnModdle } from "bpmn-moddle";

const moddle = new BpmnModdle();
let failed = false;
for (const path of process.argv.slice(2)) {
  const result = { path, warnings: [], error: null, diagrams: 0 };
  try {
    const xml = await readFile(path, "utf8");
    const { rootElement, warnings } = await moddle.fromXML(xml, "bpmn:Definitions");
    result.warnings = warnings.map((w) => w.message);
    result.diagrams = (rootElement.diagrams || []).length;
  } catch (err) {
    result.error = String(err && err.message ? err.message : err);
  }
  if (result.error || result.warnings.length || !result.diagrams) failed = true;
  console.log(JSON.stringify(result));
}
process.exit(failed ? 1 : 0);
