/**
 * File names are bytes on Linux. In memory a name (and a path of names joined by "/") is a byte
 * string: one JavaScript char per byte, as latin1 decodes it, so comparing strings compares bytes and
 * any name survives. Trees store names as UTF-8 strings when they are valid UTF-8, base64 otherwise;
 * people see them decoded, with undecodable bytes escaped (docs/ARCHITECTURE.md "Names").
 */
export type ByteString = string;

/** Printable ASCII but the backslash, which is shown escaped so that `\n` in a name is not read as a newline. */
const PLAIN = /^[\x20-\x5b\x5d-\x7e]*$/;
const ASCII = /^[\x00-\x7f]*$/;

/** The byte string of raw bytes. */
export function fromBytes(bytes: Buffer): ByteString {
  return bytes.toString('latin1');
}

/** The raw bytes of a byte string (for file system calls). */
export function toBytes(name: ByteString): Buffer {
  return Buffer.from(name, 'latin1');
}

/** The byte string of a JavaScript (Unicode) string, encoded as UTF-8. */
export function fromText(text: string): ByteString {
  return ASCII.test(text) ? text : Buffer.from(text, 'utf8').toString('latin1');
}

/** The name as text when its bytes are valid UTF-8, else undefined. */
export function asText(name: ByteString): string | undefined {
  if (ASCII.test(name)) return name;
  const bytes = toBytes(name);
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? text : undefined;
}

/**
 * How a name is shown (ls, diff, messages, JSON `path`): its text, except that a name which is not
 * valid UTF-8 or holds control characters or backslashes is escaped Go-style: `\\`, `\n`, `\t`, `\r`,
 * and `\xNN` for every other control byte and every byte that is not part of valid UTF-8.
 * `parseDisplayed` reverses it exactly: a backslash is always escaped, so no name reads as another.
 */
export function displayName(name: ByteString): string {
  if (PLAIN.test(name)) return name;
  const text = asText(name);
  // eslint-disable-next-line no-control-regex
  if (text !== undefined && !/[\x00-\x1f\x7f\\]/.test(text)) return text;
  const bytes = toBytes(name);
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    const len = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (len > 1) {
      const seq = bytes.subarray(i, i + len);
      const ch = seq.toString('utf8');
      if (seq.length === len && Buffer.from(ch, 'utf8').equals(seq)) {
        out += ch;
        i += len;
        continue;
      }
    }
    if (b === 0x5c) out += '\\\\';
    else if (b === 0x0a) out += '\\n';
    else if (b === 0x09) out += '\\t';
    else if (b === 0x0d) out += '\\r';
    else if (b < 0x20 || b === 0x7f || b >= 0x80) out += `\\x${b.toString(16).padStart(2, '0')}`;
    else out += String.fromCharCode(b);
    i++;
  }
  return out;
}

const ESCAPE = /\\(x[0-9a-fA-F]{2}|[ntr\\])/g;
const UNESCAPED: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\' };

/** The byte string a displayed (possibly escaped) name stands for. */
export function parseDisplayed(shown: string): ByteString {
  if (!shown.includes('\\')) return fromText(shown);
  let out = '';
  let last = 0;
  for (const m of shown.matchAll(ESCAPE)) {
    out += fromText(shown.slice(last, m.index));
    const code = m[1]!;
    out += code.startsWith('x') ? String.fromCharCode(parseInt(code.slice(1), 16)) : UNESCAPED[code]!;
    last = m.index + m[0].length;
  }
  return out + fromText(shown.slice(last));
}

/** Join a folder path and a name ("" is the root). */
export function childPath(parent: ByteString, name: ByteString): ByteString {
  return parent === '' ? name : `${parent}/${name}`;
}
