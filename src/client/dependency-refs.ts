/**
 * Compact causal dependencies, the client's side (Message.dependency_refs,
 * which the SDK asks for with SubscribeRequest.compact_dependencies): a
 * message's whole list of dependencies from its refs and the whole list of
 * the message before it in its room, which the same stream sent right
 * before it.
 */

/** A dependency_refs byte that means "the next entry of `dependencies`". */
export const REF_EXPLICIT = 255;

/**
 * Byte i of `refs` is an index into `before`, or REF_EXPLICIT for the next
 * of `explicit`. Undefined when they do not fit together (an index past
 * `before`, too few or too many explicit entries).
 */
export function expandDependencies<D>(refs: Uint8Array, explicit: readonly D[], before: readonly D[]): D[] | undefined {
  const out: D[] = [];
  let next = 0;
  for (const ref of refs) {
    if (ref === REF_EXPLICIT) {
      if (next >= explicit.length) return undefined;
      out.push(explicit[next++]!);
    } else {
      if (ref >= before.length) return undefined;
      out.push(before[ref]!);
    }
  }
  return next === explicit.length ? out : undefined;
}
