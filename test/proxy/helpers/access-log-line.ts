/** Splits one Envoy default-format access log line into named fields (test oracle). */
export interface ParsedLogLine {
  startTime: string;
  request: string;
  method: string;
  path: string;
  protocol: string;
  code: number;
  flags: string;
  bytesReceived: number;
  bytesSent: number;
  duration: number;
  upstreamServiceTime: string;
  xForwardedFor: string;
  userAgent: string;
  requestId: string;
  authority: string;
  upstreamHost: string;
  cluster: string;
  upstreamLocal: string;
  downstreamLocal: string;
  downstreamRemote: string;
  serverName: string;
}

const LINE =
  /^\[(\S+)\] "([^"]*)" (\d+) (\S+) (\d+) (\d+) (\d+) (\S+) "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)" (\S+) (\S+) (\S+) (\S+) (\S+)$/;

export function parseLogLine(line: string): ParsedLogLine {
  const m = LINE.exec(line);
  if (!m) throw new Error(`not an Envoy default-format line: ${line}`);
  const [method = '-', path = '-', protocol = '-'] = m[2]!.split(' ');
  return {
    startTime: m[1]!,
    request: m[2]!,
    method,
    path,
    protocol,
    code: Number(m[3]),
    flags: m[4]!,
    bytesReceived: Number(m[5]),
    bytesSent: Number(m[6]),
    duration: Number(m[7]),
    upstreamServiceTime: m[8]!,
    xForwardedFor: m[9]!,
    userAgent: m[10]!,
    requestId: m[11]!,
    authority: m[12]!,
    upstreamHost: m[13]!,
    cluster: m[14]!,
    upstreamLocal: m[15]!,
    downstreamLocal: m[16]!,
    downstreamRemote: m[17]!,
    serverName: m[18]!,
  };
}
