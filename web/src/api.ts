// The API over grpc-web, on the same origin as the page (no CORS): one transport, one client
// per service, the session token from sessionStorage, and errors in plain words.
import { type Client, Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import type { DescEnum } from "@bufbuild/protobuf";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";

import { AuditService } from "./gen/pressluft/v1/audit_pb.js";
import { AuthService } from "./gen/pressluft/v1/auth_pb.js";
import { ErrorReason } from "./gen/pressluft/v1/errors_pb.js";
import { JobService } from "./gen/pressluft/v1/job_pb.js";
import { NodeService } from "./gen/pressluft/v1/node_pb.js";
import { NodeQueryService } from "./gen/pressluft/v1/node_query_pb.js";
import { SettingsService } from "./gen/pressluft/v1/settings_pb.js";
import { SiteService } from "./gen/pressluft/v1/site_service_pb.js";

const TOKEN_KEY = "pressluft.token";

/** The session token (sessionStorage: gone when the tab closes). */
export const session = {
  token: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set: (token: string) => sessionStorage.setItem(TOKEN_KEY, token),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** Called when the server says the session is no longer valid. */
let onExpired: () => void = () => {};
export function whenSessionExpires(callback: () => void) {
  onExpired = callback;
}

const bearer: Interceptor = (next) => async (request) => {
  const token = session.token();
  if (token) request.header.set("authorization", `Bearer ${token}`);
  try {
    return await next(request);
  } catch (error) {
    if (error instanceof ConnectError && error.code === Code.Unauthenticated && token) {
      session.clear();
      onExpired();
    }
    throw error;
  }
};

const transport = createGrpcWebTransport({
  baseUrl: window.location.origin,
  interceptors: [bearer],
});

export const api: {
  auth: Client<typeof AuthService>;
  nodes: Client<typeof NodeService>;
  sites: Client<typeof SiteService>;
  jobs: Client<typeof JobService>;
  queries: Client<typeof NodeQueryService>;
  audit: Client<typeof AuditService>;
  settings: Client<typeof SettingsService>;
} = {
  auth: createClient(AuthService, transport),
  nodes: createClient(NodeService, transport),
  sites: createClient(SiteService, transport),
  jobs: createClient(JobService, transport),
  queries: createClient(NodeQueryService, transport),
  audit: createClient(AuditService, transport),
  settings: createClient(SettingsService, transport),
};

/** The server's stable reason (google.rpc.ErrorInfo.reason, the contract's ErrorReason), if
 * it sent one this UI knows. */
export function reasonOf(error: unknown): ErrorReason | undefined {
  if (!(error instanceof ConnectError)) return undefined;
  for (const detail of error.details) {
    if ("type" in detail && detail.type === "google.rpc.ErrorInfo") {
      const reader = new BinaryReader(detail.value);
      while (reader.pos < reader.len) {
        const [field, wireType] = reader.tag();
        // The wire name is the enum value's name without its ERROR_REASON_ prefix.
        if (field === 1) {
          const name = reader.string();
          return name in ErrorReason ? ErrorReason[name as keyof typeof ErrorReason] : undefined;
        }
        reader.skip(wireType);
      }
    }
  }
  return undefined;
}

const HINTS: Partial<Record<ErrorReason, string>> = {
  [ErrorReason.SITE_BUSY]:
    "Another job is working on this site; wait for it or cancel it on the Jobs page.",
  [ErrorReason.ENVIRONMENT_NOT_ACTIVE]: "The environment is not active; a failed one can be reset.",
  [ErrorReason.BACKUP_TARGET_MISSING]: "Set a backup target first (Settings).",
  [ErrorReason.NODE_NOT_READY]: "Provision the node first.",
  [ErrorReason.DNS_MISMATCH]:
    "Point the domain's DNS at the node, or skip the DNS check for a private setup.",
  [ErrorReason.NO_DRIFT_BASELINE]: "Clone a staging environment from production first.",
  [ErrorReason.VERSION_CONFLICT]: "It changed meanwhile; reload and try again.",
};

/** An error as one readable sentence (with what to do, where known). */
export function describeError(error: unknown): string {
  if (error instanceof ConnectError) {
    if (error.code === Code.Unavailable) return "The server cannot be reached right now.";
    const reason = reasonOf(error);
    const hint = reason === undefined ? undefined : HINTS[reason];
    return hint ? `${error.rawMessage} ${hint}` : error.rawMessage;
  }
  return error instanceof Error ? error.message : String(error);
}

/** "running" for JOB_STATUS_RUNNING: an enum value's name without its prefix. */
export function label(schema: DescEnum, value: number): string {
  const name = schema.value[value]?.name;
  if (!name) return `unknown(${value})`;
  const prefix = schema.values[0]?.name.replace(/UNSPECIFIED$/, "") ?? "";
  return name.slice(prefix.length).toLowerCase();
}

/** A timestamp as local date and time, or "–". */
export function when(time: Timestamp | undefined): string {
  if (!time || (time.seconds === 0n && time.nanos === 0)) return "–";
  return timestampDate(time).toLocaleString();
}

/** A byte count as people read it. */
export function bytes(n: bigint | number): string {
  let value = Number(n);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}
