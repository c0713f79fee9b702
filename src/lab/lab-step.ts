/** What a lab step is and what it reports. */
import type { CommandRecord, LabSession } from './lab-session.js';

export interface StepResult {
  readonly expected: string;
  readonly observed: string;
  readonly ok: boolean;
  readonly commands: readonly CommandRecord[];
  /** Access-log lines the step produced. */
  readonly accessLog: readonly string[];
}

export interface LabStep {
  readonly id: string;
  readonly title: string;
  /** What the seed document says happens, in a sentence. */
  readonly explain: string;
  run(session: LabSession): Promise<Omit<StepResult, 'accessLog'>>;
}

/** Status code curl printed with `-w '%{http_code}'`, or its exit code when it failed. */
export function httpOutcome(r: CommandRecord): string {
  if (r.exitCode !== 0) return `curl exit ${r.exitCode}`;
  const code = /(\d{3})\s*$/.exec(r.output)?.[1] ?? /^HTTP\/[\d.]+ (\d{3})/m.exec(r.output)?.[1];
  return code ? `HTTP ${code}` : 'no status';
}
