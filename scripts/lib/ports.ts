import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import net from "node:net";

/**
 * Who holds a TCP port: read from /proc alone (no `ss`, `lsof` or `fuser`, which a fresh Debian machine or a slim
 * container may not have). /proc/net/tcp and /proc/net/tcp6 list every socket with its local port, state and inode;
 * /proc/<pid>/fd/* link to `socket:[<inode>]`; /proc/<pid>/cmdline says what the process is. Processes of other
 * users cannot be looked into without root: then the holder is unknown, and the port still reported as taken.
 */

export interface PortHolder {
  pid: number;
  /** The command line, arguments separated by spaces. */
  command: string;
}

/** TCP state LISTEN in /proc/net/tcp (include/net/tcp_states.h). */
const LISTEN = "0A";

/** Inodes of the listening TCP sockets on `port` (IPv4 and IPv6, any local address). */
export function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      if (!local || fields[3] !== LISTEN) {
        continue;
      }
      const localPort = Number.parseInt(local.slice(local.lastIndexOf(":") + 1), 16);
      const inode = fields[9];
      if (localPort === port && inode && inode !== "0") {
        inodes.add(inode);
      }
    }
  }
  return inodes;
}

/** The processes that hold a listening socket on `port` (empty if none, or if they are not visible to us). */
export function portHolders(port: number): PortHolder[] {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) {
    return [];
  }
  const targets = new Set([...inodes].map((inode) => `socket:[${inode}]`));
  const holders: PortHolder[] = [];
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((entry) => /^\d+$/.test(entry));
  } catch {
    return [];
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or another user's
    }
    const holds = fds.some((fd) => {
      try {
        return targets.has(readlinkSync(`/proc/${pid}/fd/${fd}`));
      } catch {
        return false;
      }
    });
    if (holds) {
      let command = "";
      try {
        command = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
      } catch {
        // gone meanwhile
      }
      holders.push({ pid: Number(pid), command });
    }
  }
  return holders;
}

/** Whether `port` can be listened on at `host` now (tries it, then lets go). */
export function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A Shadowmesh service's entry point in a command line (a service left over from an earlier run). */
const SERVICE_ENTRY = /services\/(model-service|metrics-service|app-service)\/dist\/main\.js/;

/** One line naming who holds `port`: "pid 1234 (node …/main.js) — a Shadowmesh model-service; stop it: kill 1234". */
export function describeHolder(port: number): string {
  const holders = portHolders(port);
  if (holders.length === 0) {
    return `by a process this user cannot see (as root: ss -ltnp 'sport = :${port}')`;
  }
  return holders
    .map(({ pid, command }) => {
      const service = SERVICE_ENTRY.exec(command)?.[1];
      const what = command.length > 120 ? `${command.slice(0, 117)}…` : command || "?";
      return service
        ? `by pid ${pid} (${what}), a Shadowmesh ${service} started earlier (by another npm start, running or left behind); stop it with: kill ${pid}`
        : `by pid ${pid} (${what})`;
    })
    .join("; and ");
}
