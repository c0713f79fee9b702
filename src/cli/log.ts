/** Human-readable progress on stderr (stdout is reserved for data such as --dry-run output). */
export function info(message: string): void {
  process.stderr.write(`interpose: ${message}\n`);
}

export function warn(message: string): void {
  process.stderr.write(`interpose: warning: ${message}\n`);
}
