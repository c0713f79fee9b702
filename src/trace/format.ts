/** A TraceResult as text for people, and as plain data for `--json`. */
import { formatAddress } from '../net/ip-format.js';
import { endpoint, type TracePacket } from './packet.js';
import { describeVerdict } from './verdict.js';
import type { TraceResult } from './walker.js';

export function describePacket(p: TracePacket): string {
  const owner = p.direction === 'outbound' ? ` uid ${p.uid} gid ${p.gid}` : '';
  const iface = p.direction === 'outbound' ? ` out ${p.outInterface}` : ` in ${p.inInterface}`;
  return `${p.direction} ${p.protocol} ${endpoint(p.src, p.sport)} -> ${endpoint(p.dst, p.dport)}${owner}${iface} state ${p.ctState}`;
}

/** What the verdict means for this packet, in one sentence. */
function meaning(result: TraceResult, p: TracePacket): string {
  const to = endpoint(p.dst, p.dport);
  switch (result.verdict.kind) {
    case 'redirect':
      return `the connection to ${to} is handed to the proxy on port ${result.verdict.port}`;
    case 'dns-redirect':
      return `the DNS query to ${to} goes to the DNS proxy on port ${result.verdict.port}`;
    case 'tproxy':
      return `the connection to ${to} is delivered to the transparent listener on port ${result.verdict.port}`;
    case 'untouched':
      return p.direction === 'outbound'
        ? `the connection goes straight to ${to}: the proxy is bypassed`
        : `the connection reaches ${to} directly: the proxy is bypassed`;
    case 'drop':
      return 'the packet is dropped';
  }
}

export function formatTrace(result: TraceResult, packet: TracePacket, source: string, assumptions: readonly string[]): string {
  const lines: string[] = [];
  lines.push(`packet:  ${describePacket(packet)}`);
  if (packet.dstRewrite) lines.push(`         (given --dst ${packet.dstRewrite.given}: ${packet.dstRewrite.reason})`);
  lines.push(`rules:   ${source}`);
  lines.push(`verdict: ${describeVerdict(result.verdict)} — ${meaning(result, packet)}`);
  for (const d of result.decidedBy) {
    lines.push(`decided by (${d.table}, hook ${d.hook}):`);
    for (const v of d.via) lines.push(`    ${v}`);
    lines.push(d.rule !== undefined ? `  > ${d.rule}` : `  > ${d.why}`);
    if (d.rule !== undefined) lines.push(`    (${d.why})`);
    if (d.missed && d.missed.length > 0) {
      lines.push('  rules there that would have captured it, and why they did not match:');
      for (const m of d.missed) lines.push(`    ${m.rule}   (${m.why})`);
    }
  }
  if (result.decidedBy.length === 0 && result.verdict.kind === 'untouched') lines.push('decided by: no interpose rule applies to this packet');
  lines.push('', 'path:');
  for (const s of result.steps) {
    switch (s.kind) {
      case 'hook':
        lines.push(`  [${s.hook}] ${s.table} ${s.chain} (priority ${s.priority})`);
        break;
      case 'skip':
        lines.push(`  [${s.hook}] ${s.table} ${s.chain}: skipped — ${s.why}`);
        break;
      case 'rule': {
        const pad = '    '.repeat(s.depth + 1);
        lines.push(s.matched ? `  ${pad}✓ ${s.text}${s.effect ? `   → ${s.effect}` : ''}` : `  ${pad}✗ ${s.text}   (${s.why})`);
        break;
      }
      case 'leave':
        lines.push(`  ${'    '.repeat(s.depth + 1)}· ${s.why}`);
        break;
    }
  }
  const f = result.final;
  lines.push('', `final:   destination ${f.destination}, mark 0x${f.mark.toString(16)}, connection mark 0x${f.ctMark.toString(16)}${f.ctZone !== undefined ? `, conntrack zone ${f.ctZone}` : ''}`);
  const notes = [...result.notes, ...assumptions.map((a) => `assumed ${a}`)];
  if (notes.length > 0) {
    lines.push('notes:');
    for (const n of notes) lines.push(`  - ${n}`);
  }
  return lines.join('\n') + '\n';
}

/** The `--json` document. */
export function traceJson(result: TraceResult, packet: TracePacket, source: string, assumptions: readonly string[]): unknown {
  return {
    packet: {
      direction: packet.direction,
      protocol: packet.protocol,
      src: formatAddress(packet.src),
      dst: formatAddress(packet.dst),
      sport: packet.sport,
      dport: packet.dport,
      ...(packet.direction === 'outbound' ? { uid: packet.uid, gid: packet.gid, out: packet.outInterface } : { in: packet.inInterface }),
      state: packet.ctState,
      mark: packet.mark,
      ...(packet.dstRewrite ? { dstGiven: packet.dstRewrite.given, dstRewrite: packet.dstRewrite.reason } : {}),
    },
    rules: source,
    verdict: result.verdict,
    summary: describeVerdict(result.verdict),
    decidedBy: result.decidedBy,
    path: result.steps,
    final: result.final,
    notes: result.notes,
    assumptions,
  };
}
