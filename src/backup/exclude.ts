import { fromText, type ByteString } from '../repo/tree/names.js';

/**
 * restic-style exclude patterns: `*` and `?` stay within a path segment, `**` crosses segments; a pattern
 * without `/` matches a name at any depth, one with `/` matches from the backup root.
 */
export function compileExcludes(patterns: string[]): (path: ByteString) => boolean {
  // Paths are byte strings (repo/tree/names.ts), so patterns are matched as UTF-8 bytes too.
  const regexes = patterns.filter((p) => p.trim() !== '').map((p) => toRegex(fromText(p)));
  return (path) => regexes.some((re) => re.test(path));
}

function toRegex(pattern: string): RegExp {
  const trimmed = pattern.replace(/\/+$/, '');
  const anchored = trimmed.includes('/');
  const body = trimmed
    .replace(/^\/+/, '')
    .split(/(\*\*\/?|\*|\?)/)
    .map((part) => {
      if (part === '**/' ) return '(?:.*/)?';
      if (part === '**') return '.*';
      if (part === '*') return '[^/]*';
      if (part === '?') return '[^/]';
      return part.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  // A match also excludes everything below the matched folder.
  return new RegExp(`${anchored ? '^' : '(?:^|/)'}${body}(?:/.*)?$`);
}
