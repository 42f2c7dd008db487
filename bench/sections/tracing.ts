import { formatNs } from "../measure.js";
import type { Report, Section } from "../report.js";
import { type TracingRow, tracingCost } from "../tracing.js";

function rows(list: TracingRow[]): string {
  return list
    .map(
      (row) =>
        `| ${row.name} | ${row.before === undefined ? "—" : formatNs(row.before)} | ${formatNs(row.now)} | ${row.ratio === undefined ? "—" : `${row.ratio.toFixed(3)}x`} | ${row.control === undefined ? "—" : `${row.control.toFixed(3)}x`} |`,
    )
    .join("\n");
}

export const tracing: Section = {
  name: "tracing",
  title: "a hit with OpenTelemetry tracing off and on",
  async run(report: Report) {
    const results = await tracingCost();
    for (const row of results.off) {
      if (row.ratio === undefined) continue;
      report.check(
        `${row.name.split(" — ")[0]} with tracing off within 5% of before tracing`,
        row.ratio <= 1.05,
        `${row.ratio.toFixed(3)}x`,
      );
    }
    report.add(`## OpenTelemetry: a hit with tracing off and on

"Before" is \`src/\` at ${results.commit === undefined ? "(not in a git checkout: no baseline)" : `\`${results.commit}\``}, the commit before tracing was added, imported beside the
current code in the same process. Each row is the median of ${results.rounds} rounds; in a round
the contenders are timed in turn (a different order each round), and a ratio is the median of
the rounds' own ratios. The control is a second copy of the code before tracing: its ratio is how
far two equal contenders drift apart on this machine. "Tracer installed" is a \`BasicTracerProvider\` with a
processor that drops spans and an AsyncLocalStorage context manager: the cost of making the
spans (a call span per hit, with its canonical key hashed for the attribute; the gateway's
request span and its store read's span), not of exporting them. "After \`trace.disable()\`" runs the
same one-branch check as "tracing off", in code the JIT compiled while the traced path ran.

| row | before tracing | now | now / before | control / before |
|---|---:|---:|---:|---:|
${rows(results.off)}
${rows(results.apiOnly)}
${rows(results.on)}`);
  },
};
