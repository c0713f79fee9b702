/** How the lab talks: progress while it works, each step's commands and logs, a final table. */
import { styleText } from 'node:util';
import type { StepResult } from './lab-step.js';

export interface ReportedStep extends StepResult {
  readonly id: string;
  readonly title: string;
}

export class LabReporter {
  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly color: boolean,
    /** JSON mode: only the final document goes to `out`; progress goes to stderr. */
    private readonly json: boolean,
  ) {}

  private paint(style: Parameters<typeof styleText>[0], text: string): string {
    return this.color ? styleText(style, text) : text;
  }

  private say(text: string): void {
    (this.json ? process.stderr : this.out).write(text + '\n');
  }

  progress(text: string): void {
    this.say(this.paint('dim', `… ${text}`));
  }

  stepStart(index: number, total: number, title: string, explain: string): void {
    this.say('');
    this.say(this.paint('bold', `[${index}/${total}] ${title}`));
    if (!this.json) this.say(`    ${explain}`);
  }

  stepDone(step: ReportedStep): void {
    if (this.json) {
      this.say(`    ${step.ok ? 'ok' : 'FAILED'}: ${step.observed}`);
      return;
    }
    for (const c of step.commands) {
      this.say(this.paint('cyan', `    $ ${c.display}`));
      for (const line of c.output.split('\n').filter(Boolean).slice(0, 6)) this.say(`      ${line}`);
    }
    for (const line of step.accessLog) this.say(this.paint('yellow', `    access log: ${line}`));
    const verdict = step.ok ? this.paint('green', '✔ as expected') : this.paint('red', '✘ NOT as expected');
    this.say(`    ${verdict}: ${step.observed}`);
  }

  summary(seed: string, steps: readonly ReportedStep[]): void {
    const ok = steps.every((s) => s.ok);
    if (this.json) {
      this.out.write(JSON.stringify({ seed, ok, steps }, null, 2) + '\n');
      return;
    }
    const rows = steps.map((s, i) => [`${i + 1}`, s.title, s.expected, s.observed, s.ok ? 'ok' : 'FAIL']);
    const head = ['#', 'step', 'expected', 'observed', ''];
    const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
    const fmt = (r: string[]) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ');
    this.say('');
    this.say(this.paint('bold', fmt(head)));
    for (const r of rows) {
      const line = fmt(r);
      this.say(r[4] === 'ok' ? line : this.paint('red', line));
    }
    this.say('');
    this.say(ok ? this.paint('green', `${seed}: all ${steps.length} steps as expected`) : this.paint('red', `${seed}: ${steps.filter((s) => !s.ok).length} of ${steps.length} steps differ`));
  }
}
