import net from "node:net";

/**
 * A TCP proxy in front of the broker whose connections can be cut, to
 * simulate a network failure under a live client.
 */
export interface CuttableProxy {
  url: string;
  cuts: number;
  /** Destroys every connection through the proxy. */
  cut(): void;
  /** Later connections go to this port (e.g. a restarted broker). */
  retarget(port: number): void;
  /** While blocked, new connections are dropped at once (the network is down). */
  blocked: boolean;
  close(): Promise<void>;
}

export async function startCuttableProxy(targetPort: number): Promise<CuttableProxy> {
  const sockets = new Set<net.Socket>();
  const state = { cuts: 0, port: targetPort, blocked: false };
  const server = net.createServer((client) => {
    if (state.blocked) {
      client.destroy();
      return;
    }
    const upstream = net.connect(state.port, "127.0.0.1");
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get cuts() {
      return state.cuts;
    },
    get blocked() {
      return state.blocked;
    },
    set blocked(value: boolean) {
      state.blocked = value;
    },
    retarget(port: number) {
      state.port = port;
    },
    cut() {
      state.cuts++;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
