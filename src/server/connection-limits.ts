import { readFileSync } from "node:fs";

/**
 * How many connections the port takes and how long a connection may sit
 * without doing anything useful. Every limit protects the process's file
 * descriptors and memory from clients that connect and then stall.
 */
export interface ConnectionLimits {
  /** Open connections at once; over it a new connection is closed at once. */
  maxConnections: number;
  /** Open connections at once from one client address (0 = no per-address limit). */
  maxConnectionsPerAddress: number;
  /**
   * A connection must show its protocol (the HTTP/2 preface and SETTINGS,
   * or a complete HTTP/1.1 request head) within this long; an HTTP/1.1
   * keep-alive connection must complete each next request head within it too.
   */
  handshakeTimeoutMs: number;
  /**
   * A request must have fully arrived within this long (0 = no limit):
   * HTTP/1.1 gets 408, an HTTP/2 call RST_STREAM(CANCEL). Calls whose
   * requests stream (PublishStream, reflection) are exempt.
   */
  requestTimeoutMs: number;
  /** An HTTP/2 connection without an open stream this long gets GOAWAY (0 = never). */
  idleTimeoutMs: number;
}

/** `auto` in the settings: resolved by resolveConnectionLimits. */
export const AUTO = -1;

export const defaultConnectionLimits: ConnectionLimits = {
  maxConnections: AUTO,
  maxConnectionsPerAddress: AUTO,
  handshakeTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  idleTimeoutMs: 5 * 60_000,
};

/** The most connections `auto` allows, whatever the file descriptor limit. */
export const AUTO_MAX_CONNECTIONS = 10_000;
/** File descriptors `auto` leaves for everything else (the database, Redis, logs, the listener). */
const RESERVED_FDS = 64;

/** The soft limit of open files of this process (Linux: /proc/self/limits); undefined where unknown. */
export function openFileLimit(): number | undefined {
  try {
    const line = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return line && line[1] !== "unlimited" ? Number(line[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Resolves `auto`: at most 10,000 connections, and never so many that the
 * process runs out of file descriptors (which would refuse every new client
 * and fail the engine's own files); per address a tenth of that.
 */
export function resolveConnectionLimits(limits: ConnectionLimits, fdLimit = openFileLimit()): ConnectionLimits {
  const byFds = fdLimit === undefined ? AUTO_MAX_CONNECTIONS : Math.max(16, Math.floor((fdLimit - RESERVED_FDS) * 0.9));
  const maxConnections = limits.maxConnections === AUTO ? Math.min(AUTO_MAX_CONNECTIONS, byFds) : limits.maxConnections;
  const maxConnectionsPerAddress =
    limits.maxConnectionsPerAddress === AUTO ? Math.max(1, Math.floor(maxConnections / 10)) : limits.maxConnectionsPerAddress;
  return { ...limits, maxConnections, maxConnectionsPerAddress };
}
