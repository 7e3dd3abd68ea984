/**
 * JSON.parse keeps the last of duplicate keys and a reviver never sees the earlier ones, so a
 * header naming one tensor twice would silently lose an entry. This scans JSON text that
 * JSON.parse has already accepted and reports the first key repeated within one object, with the
 * keys of the objects enclosing it (arrays skipped). Keys compare decoded ("a" equals "\u0061").
 */
export function findDuplicateKey(json: string): { key: string; path: string[] } | null {
  // One frame per open object/array; `keys` is null for arrays.
  const stack: { keys: Set<string> | null; expectKey: boolean; lastKey: string }[] = [];
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c === 0x7b /* { */) stack.push({ keys: new Set(), expectKey: true, lastKey: '' });
    else if (c === 0x5b /* [ */) stack.push({ keys: null, expectKey: false, lastKey: '' });
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) stack.pop();
    else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top.keys) top.expectKey = true;
    } else if (c === 0x22 /* " */) {
      let j = i + 1;
      while (json.charCodeAt(j) !== 0x22) j += json.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(json.slice(i, j + 1)) as string;
        if (top.keys.has(key)) {
          return { key, path: stack.slice(0, -1).flatMap((f) => (f.keys ? [f.lastKey] : [])) };
        }
        top.keys.add(key);
        top.lastKey = key;
        top.expectKey = false;
      }
      i = j;
    }
  }
  return null;
}
