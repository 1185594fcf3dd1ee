// The few Neon API v2 endpoints a preview stage uses (list, create and delete branches, read
// an operation), over the machine's Postgres: a branch is a database created from its
// parent's with CREATE DATABASE … TEMPLATE, which, like Neon's copy-on-write branch, starts
// with the parent's schema and data and then diverges. Operations report "running" once and
// "finished" after, so callers that wait for them are exercised.

import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { readBody } from "./read-body.ts";

export interface NeonApiStandIn {
  /** Base URL to give @neondatabase/api-client as baseURL (…/api/v2). */
  url: string;
  apiKey: string;
  projectId: string;
  /** Branch id of the project's default branch (the parent database). */
  defaultBranchId: string;
  /** Databases currently backing branches, by branch id. */
  branches(): Map<string, { name: string; database: string }>;
  close(): Promise<void>;
}

interface Branch {
  id: string;
  name: string;
  parentId: string | null;
  database: string;
  createdAt: string;
}

const id = (prefix: string) => `${prefix}-${randomBytes(6).toString("hex")}`;

/**
 * Serves a project whose default branch is `options.database` on the Postgres at
 * `options.postgresUrl` (a server URL without database). Branch databases it creates and
 * has not deleted are dropped on close.
 */
export async function startNeonApiStandIn(options: { postgresUrl: string; database: string; role?: string }): Promise<NeonApiStandIn> {
  const apiKey = randomBytes(16).toString("hex");
  const projectId = id("proj");
  const role = options.role ?? "postgres";
  const main: Branch = { id: id("br"), name: "main", parentId: null, database: options.database, createdAt: new Date().toISOString() };
  const branches = new Map<string, Branch>([[main.id, main]]);
  const operations = new Map<string, { action: string; branchId: string; polls: number }>();
  const server = new URL(options.postgresUrl);

  async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = new pg.Client({ connectionString: new URL("/postgres", server).href });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  }

  const connectionUri = (database: string) => {
    const u = new URL(`/${database}`, server);
    u.username = role;
    return u.href;
  };
  const branchJson = (b: Branch) => ({
    id: b.id,
    project_id: projectId,
    name: b.name,
    parent_id: b.parentId,
    default: b.id === main.id,
    current_state: "ready",
    created_at: b.createdAt,
    updated_at: b.createdAt,
  });
  const operation = (action: string, branchId: string) => {
    const op = { id: randomBytes(8).toString("hex"), action, branchId, polls: 0 };
    operations.set(op.id, op);
    return { id: op.id, project_id: projectId, branch_id: branchId, action, status: "running", failures_count: 0, created_at: new Date().toISOString(), updated_at: new Date().toISOString(), total_duration_ms: 0 };
  };

  async function route(method: string, path: string, query: URLSearchParams, body: string): Promise<{ status: number; json: unknown }> {
    const m = /^\/api\/v2\/projects\/([^/]+)(\/.*)$/.exec(path);
    if (!m || m[1] !== projectId) return { status: 404, json: { code: "", message: "project not found" } };
    const rest = m[2]!;
    if (method === "GET" && rest === "/branches") {
      const search = query.get("search") ?? "";
      return { status: 200, json: { branches: [...branches.values()].filter((b) => b.name.includes(search) || b.id.includes(search)).map(branchJson), annotations: {} } };
    }
    if (method === "POST" && rest === "/branches") {
      const req = (body ? JSON.parse(body) : {}) as { branch?: { name?: string; parent_id?: string }; endpoints?: { type: string }[] };
      const parent = branches.get(req.branch?.parent_id ?? main.id);
      if (!parent) return { status: 404, json: { code: "", message: `parent branch ${req.branch?.parent_id} not found` } };
      const branch: Branch = { id: id("br"), name: req.branch?.name ?? id("branch"), parentId: parent.id, database: `${options.database}_${randomBytes(4).toString("hex")}`, createdAt: new Date().toISOString() };
      await admin((c) => c.query(`create database "${branch.database}" template "${parent.database}"`));
      branches.set(branch.id, branch);
      const endpoints = (req.endpoints ?? []).map((e) => ({ id: id("ep"), branch_id: branch.id, type: e.type, host: server.hostname, current_state: "init" }));
      return {
        status: 201,
        json: {
          branch: branchJson(branch),
          endpoints,
          operations: [operation("create_branch", branch.id), ...endpoints.map(() => operation("start_compute", branch.id))],
          roles: [{ branch_id: branch.id, name: role, protected: false }],
          databases: [{ id: 1, branch_id: branch.id, name: branch.database, owner_name: role }],
          connection_uris: endpoints.length
            ? [{ connection_uri: connectionUri(branch.database), connection_parameters: { database: branch.database, password: "", role, host: server.host, pooler_host: server.host } }]
            : [],
        },
      };
    }
    const del = /^\/branches\/([^/]+)$/.exec(rest);
    if (method === "DELETE" && del) {
      const branch = branches.get(del[1]!);
      if (!branch) return { status: 404, json: { code: "", message: "branch not found" } };
      if (branch.id === main.id) return { status: 422, json: { code: "", message: "cannot delete the default branch" } };
      await admin((c) => c.query(`drop database if exists "${branch.database}" with (force)`));
      branches.delete(branch.id);
      return { status: 200, json: { branch: branchJson(branch), operations: [operation("delete_timeline", branch.id)] } };
    }
    const op = /^\/operations\/([^/]+)$/.exec(rest);
    if (method === "GET" && op) {
      const o = operations.get(op[1]!);
      if (!o) return { status: 404, json: { code: "", message: "operation not found" } };
      o.polls++;
      return { status: 200, json: { operation: { id: op[1], project_id: projectId, branch_id: o.branchId, action: o.action, status: o.polls > 1 ? "finished" : "running", failures_count: 0, created_at: "", updated_at: "", total_duration_ms: 0 } } };
    }
    return { status: 404, json: { code: "", message: `no route ${method} ${path}` } };
  }

  const http = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    let out: { status: number; json: unknown };
    if (req.headers.authorization !== `Bearer ${apiKey}`) out = { status: 401, json: { code: "", message: "authorization failed" } };
    else {
      try {
        out = await route(req.method ?? "GET", url.pathname, url.searchParams, await readBody(req));
      } catch (e) {
        out = { status: 500, json: { code: "", message: (e as Error).message } };
      }
    }
    res.writeHead(out.status, { "content-type": "application/json" }).end(JSON.stringify(out.json));
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const { port } = http.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/api/v2`,
    apiKey,
    projectId,
    defaultBranchId: main.id,
    branches: () => new Map([...branches.values()].filter((b) => b.id !== main.id).map((b) => [b.id, { name: b.name, database: b.database }])),
    async close() {
      await new Promise<void>((resolve) => http.close(() => resolve()));
      for (const b of branches.values()) {
        if (b.id !== main.id) await admin((c) => c.query(`drop database if exists "${b.database}" with (force)`));
      }
    },
  };
}
