import type { Transport } from "@connectrpc/connect";

/**
 * Where the SDK gets its bearer token: a fixed JWT, or a function asked
 * before every call (to refresh a token before it expires).
 */
export type TokenSource = string | (() => string | Promise<string>);

/**
 * The transport with `authorization: Bearer <token>` on every call, so no
 * caller (the SDK, an application using `client.rpc`) has to pass headers.
 * Headers a call sets itself win.
 */
export function withToken(transport: Transport, token: TokenSource): Transport {
  const headerFor = async (init: HeadersInit | undefined): Promise<Headers> => {
    const header = new Headers(init);
    if (!header.has("authorization")) header.set("authorization", `Bearer ${typeof token === "string" ? token : await token()}`);
    return header;
  };
  return {
    async unary(method, signal, timeoutMs, header, input, contextValues) {
      return transport.unary(method, signal, timeoutMs, await headerFor(header), input, contextValues);
    },
    async stream(method, signal, timeoutMs, header, input, contextValues) {
      return transport.stream(method, signal, timeoutMs, await headerFor(header), input, contextValues);
    },
  };
}
