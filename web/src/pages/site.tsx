import type { MessageInitShape } from "@bufbuild/protobuf";
import { useState } from "preact/hooks";

import { api, bytes, describeError, label, when } from "../api.js";
import type { Job } from "../gen/pressluft/v1/job_pb.js";
import {
  BackupScope,
  BackupScopeSchema,
  BackupStatus,
  BackupStatusSchema,
  BackupTriggerSchema,
  DriftStatusSchema,
  type Environment,
  EnvironmentKind,
  EnvironmentKindSchema,
  EnvironmentStatus,
  EnvironmentStatusSchema,
  PromotionPreset,
  ReleaseHealthSchema,
  ReleaseSourceSchema,
  SiteStatusSchema,
  TlsStatusSchema,
} from "../gen/pressluft/v1/site_pb.js";
import { ConfirmButton, ErrorBox, Loading, Status, useJobs, useLoad, useSubmit } from "../ui.js";

export function SitePage({ siteId }: { siteId: string }) {
  const site = useLoad(async () => (await api.sites.getSite({ siteId })).site, [siteId]);
  const [selected, setSelected] = useState<string | undefined>();
  const [version, setVersion] = useState(0);
  const refresh = () => {
    site.reload();
    setVersion((v) => v + 1);
  };
  const jobs = useJobs(refresh);
  if (site.error) return <ErrorBox error={site.error} />;
  if (!site.value) return <Loading what="the site" />;
  const s = site.value;
  const env = s.environments.find((e) => e.id === selected) ?? s.environments.find((e) => e.id === s.productionEnvironmentId) ?? s.environments[0];
  return (
    <section aria-labelledby="site-title">
      <h1 id="site-title">
        {s.name} <span class="muted">{s.slug}</span> <Status text={label(SiteStatusSchema, s.status)} />
      </h1>
      <nav aria-label="environments" class="env-tabs">
        {s.environments.map((e) => (
          <button key={e.id} type="button" aria-pressed={e.id === env?.id} onClick={() => setSelected(e.id)}>
            {e.name} <Status text={label(EnvironmentStatusSchema, e.status)} />
          </button>
        ))}
      </nav>
      {jobs.view}
      {env && <EnvironmentPanel key={`${env.id}-${version}`} siteId={s.id} env={env} started={jobs.started} production={s.productionEnvironmentId} />}
      <DeleteSite siteId={s.id} slug={s.slug} started={jobs.started} />
    </section>
  );
}

type Started = (job?: Job) => void;

function EnvironmentPanel({ siteId, env, started, production }: { siteId: string; env: Environment; started: Started; production: string }) {
  const active = env.status === EnvironmentStatus.ACTIVE;
  const [loginError, setLoginError] = useState<string | undefined>();
  const openAdmin = async () => {
    setLoginError(undefined);
    // Opened now, inside the click, so no popup blocker stops it; pointed at the link below.
    const tab = window.open("about:blank", "_blank");
    // The site (its code is the tenant's) must get no handle on this window: no opener.
    if (tab) tab.opener = null;
    try {
      const login = await api.queries.createMagicLogin({ environmentId: env.id });
      if (tab) tab.location.href = login.url;
      else window.location.href = login.url;
    } catch (e) {
      tab?.close();
      setLoginError(describeError(e));
    }
  };
  return (
    <div class="panel">
      <dl class="facts">
        <dt>Status</dt>
        <dd>
          <Status text={label(EnvironmentStatusSchema, env.status)} /> {env.statusMessage}
        </dd>
        <dt>Kind</dt>
        <dd>{label(EnvironmentKindSchema, env.kind)}</dd>
        <dt>Address</dt>
        <dd>{env.url ? <a href={env.url}>{env.url}</a> : "–"}</dd>
        <dt>Preview</dt>
        <dd>{env.previewUrl}</dd>
        <dt>PHP</dt>
        <dd>{env.phpVersion}</dd>
        <dt>Drift</dt>
        <dd>
          <Status text={label(DriftStatusSchema, env.driftStatus)} /> <span class="muted">{when(env.driftCheckTime)}</span>
        </dd>
        <dt>Last backup</dt>
        <dd>{when(env.lastBackupTime)}</dd>
      </dl>
      <div class="actions" role="toolbar" aria-label="environment actions">
        <button type="button" class="primary" disabled={!active} onClick={openAdmin}>
          Open WordPress admin
        </button>
        <DeployButton env={env} started={started} />
        <ConfirmButton label="Roll back" title="Roll back to the previous release?" disabled={!active} onConfirm={async () => started((await api.sites.rollbackEnvironment({ environmentId: env.id })).job)}>
          <p>{env.name} switches to its newest healthy release before the live one, checked after the switch.</p>
        </ConfirmButton>
        <ConfirmButton label="Back up now" title="Back up now?" disabled={!active} onConfirm={async () => started((await api.sites.createBackup({ environmentId: env.id, scope: BackupScope.FULL })).job)}>
          <p>A full backup (database and files) of {env.name} goes to the backup target.</p>
        </ConfirmButton>
        <CloneButton siteId={siteId} env={env} started={started} />
        {env.kind === EnvironmentKind.STAGING && <PromoteButton env={env} production={production} started={started} />}
        {env.status === EnvironmentStatus.FAILED && (
          <ConfirmButton label="Reset" title="Re-check this environment?" onConfirm={async () => started((await api.sites.resetEnvironment({ environmentId: env.id })).job)}>
            <p>Runs the health checks; the environment becomes active again if they pass.</p>
          </ConfirmButton>
        )}
        {env.kind !== EnvironmentKind.PRODUCTION && (
          <ConfirmButton danger label="Delete environment" title={`Delete ${env.name}?`} onConfirm={async () => started((await api.sites.deleteEnvironment({ environmentId: env.id })).job)}>
            <p>Removes {env.name}'s files, database and users from its node.</p>
          </ConfirmButton>
        )}
      </div>
      <ErrorBox error={loginError} />
      <Releases envId={env.id} />
      <Backups env={env} started={started} />
      <Domains env={env} started={started} />
      <Cache env={env} started={started} />
    </div>
  );
}

function DeployButton({ env, started }: { env: Environment; started: Started }) {
  const [kind, setKind] = useState<"wordpress" | "git" | "archive">("wordpress");
  const [value, setValue] = useState("latest");
  const [reference, setReference] = useState("");
  const source = (): MessageInitShape<typeof ReleaseSourceSchema>["source"] => {
    if (kind === "git") return { case: "git", value: { url: value, ref: reference } };
    if (kind === "archive") return { case: "archive", value: { url: value, sha256: "" } };
    return { case: "wordpress", value: { version: value || "latest" } };
  };
  return (
    <ConfirmButton label="Deploy" title={`Deploy a new release to ${env.name}`} disabled={env.status !== EnvironmentStatus.ACTIVE} onConfirm={async () => started((await api.sites.deployEnvironment({ environmentId: env.id, source: { source: source() } })).job)}>
      <label for="deploy-kind">Source</label>
      <select id="deploy-kind" name="deploy-kind" value={kind} onChange={(e) => { const k = e.currentTarget.value as typeof kind; setKind(k); setValue(k === "wordpress" ? "latest" : ""); }}>
          <option value="wordpress">WordPress core version</option>
          <option value="git">Git repository</option>
          <option value="archive">Archive URL (.tar.gz)</option>
      </select>
      <label>
        {kind === "wordpress" ? "Version" : "URL"}
        <input name="deploy-value" value={value} onInput={(e) => setValue(e.currentTarget.value)} />
      </label>
      {kind === "git" && (
        <label>
          Ref (tag, branch or commit; empty: default branch)
          <input name="deploy-ref" value={reference} onInput={(e) => setReference(e.currentTarget.value)} />
        </label>
      )}
      <p class="muted">Checked before it goes live and after; switched back automatically if it fails.</p>
    </ConfirmButton>
  );
}

function CloneButton({ siteId, env, started }: { siteId: string; env: Environment; started: Started }) {
  const [name, setName] = useState("staging");
  return (
    <ConfirmButton label="Clone to staging" title={`Clone ${env.name}`} disabled={env.status !== EnvironmentStatus.ACTIVE} onConfirm={async () => started((await api.sites.createEnvironment({ siteId, sourceEnvironmentId: env.id, name, kind: EnvironmentKind.STAGING })).job)}>
      <label>
        Name of the new environment
        <input name="clone-name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <p class="muted">Files and database are copied and URLs rewritten; it is kept out of search engines.</p>
    </ConfirmButton>
  );
}

function PromoteButton({ env, production, started }: { env: Environment; production: string; started: Started }) {
  const drift = useLoad(async () => (await api.sites.getDriftReport({ environmentId: production })).report, [production]);
  return (
    <ConfirmButton label="Promote" title={`Promote ${env.name} into production?`} disabled={env.status !== EnvironmentStatus.ACTIVE} onConfirm={async () => started((await api.sites.promoteEnvironment({ sourceEnvironmentId: env.id, preset: PromotionPreset.CONTENT_PROTECT })).job)}>
      <p>
        Production drift: {drift.value ? <Status text={label(DriftStatusSchema, drift.value.status)} /> : "…"} (checked {when(drift.value?.checkTime)})
      </p>
      {drift.value && drift.value.items.length > 0 && (
        <ul>
          {drift.value.items.slice(0, 10).map((item) => (
            <li key={`${item.category}-${item.name}`}>
              {item.category} {item.name}: {item.detail}
            </li>
          ))}
        </ul>
      )}
      <p class="muted">Posts, comments, terms and uploads in production are kept. A fresh drift check and a full backup come first; a drifted production is refused.</p>
    </ConfirmButton>
  );
}

function Releases({ envId }: { envId: string }) {
  const releases = useLoad(async () => (await api.sites.listReleases({ environmentId: envId, pageSize: 20 })).releases, [envId]);
  return (
    <details open>
      <summary>Releases</summary>
      <ErrorBox error={releases.error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Created</th>
            <th scope="col">Source</th>
            <th scope="col">Health</th>
            <th scope="col">Live</th>
          </tr>
        </thead>
        <tbody>
          {releases.value?.map((r) => (
            <tr key={r.id}>
              <td>{when(r.createTime)}</td>
              <td>{r.source?.source.case ?? "–"} {r.resolvedRef.slice(0, 12)}</td>
              <td>
                <Status text={label(ReleaseHealthSchema, r.health)} />
              </td>
              <td>{r.isCurrent ? "live" : ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </details>
  );
}

function Backups({ env, started }: { env: Environment; started: Started }) {
  const backups = useLoad(async () => (await api.sites.listBackups({ environmentId: env.id, pageSize: 50 })).backups, [env.id]);
  return (
    <details open>
      <summary>Backups</summary>
      <ErrorBox error={backups.error} />
      {backups.value?.length === 0 && <p class="muted">No backups yet.</p>}
      {backups.value && backups.value.length > 0 && (
        <table aria-label="backups">
          <thead>
            <tr>
              <th scope="col">Created</th>
              <th scope="col">Scope</th>
              <th scope="col">Status</th>
              <th scope="col">Trigger</th>
              <th scope="col">Size</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {backups.value.map((b) => (
              <tr key={b.id}>
                <td>{when(b.createTime)}</td>
                <td>{label(BackupScopeSchema, b.scope)}</td>
                <td>
                  <Status text={label(BackupStatusSchema, b.status)} />
                </td>
                <td>{label(BackupTriggerSchema, b.trigger)}</td>
                <td>{b.sizeBytes > 0n ? bytes(b.sizeBytes) : "–"}</td>
                <td>
                  {b.status === BackupStatus.COMPLETED && (
                    <ConfirmButton label="Restore" title="Restore this backup?" onConfirm={async () => started((await api.sites.restoreBackup({ environmentId: env.id, backupId: b.id })).job)}>
                      <p>
                        {env.name} is put back as it was at {when(b.createTime)}. A pre-restore backup is taken first and the checksum verified.
                      </p>
                    </ConfirmButton>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </details>
  );
}

function Domains({ env, started }: { env: Environment; started: Started }) {
  const domains = useLoad(async () => (await api.sites.listDomains({ environmentId: env.id, pageSize: 100 })).domains, [env.id]);
  const [hostname, setHostname] = useState("");
  const { error, submit: add } = useSubmit(async () => {
    started((await api.sites.addDomain({ environmentId: env.id, hostname })).job);
    setHostname("");
    domains.reload();
  });
  return (
    <details open>
      <summary>Domains</summary>
      {domains.value?.length === 0 && <p class="muted">No custom domains; served at {env.url}.</p>}
      {domains.value && domains.value.length > 0 && (
        <table aria-label="domains">
          <tbody>
            {domains.value.map((d) => (
              <tr key={d.id}>
                <td>{d.hostname}</td>
                <td>{d.isPrimary ? "primary" : "redirects"}</td>
                <td>
                  <Status text={label(TlsStatusSchema, d.tlsStatus)} /> {d.tlsExpiresSoon && <strong class="error">expires soon</strong>}
                </td>
                <td>{when(d.tlsExpireTime)}</td>
                <td>{d.tlsMessage}</td>
                <td>
                  <ConfirmButton danger label="Remove" title={`Remove ${d.hostname}?`} onConfirm={async () => started((await api.sites.removeDomain({ domainId: d.id })).job)}>
                    <p>Its certificate is deleted{d.isPrimary ? "; the site goes back to its preview address" : ""}.</p>
                  </ConfirmButton>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form onSubmit={add} class="inline">
        <label>
          Add a domain
          <input name="domain" placeholder="www.example.com" required value={hostname} onInput={(e) => setHostname(e.currentTarget.value)} />
        </label>
        <button type="submit">Add domain</button>
      </form>
      <ErrorBox error={error} />
    </details>
  );
}

function Cache({ env, started }: { env: Environment; started: Started }) {
  const page = env.cache?.pageCache ?? false;
  const object = env.cache?.objectCache ?? false;
  const active = env.status === EnvironmentStatus.ACTIVE;
  return (
    <details>
      <summary>Cache</summary>
      <p>
        Page cache: <strong>{page ? "on" : "off"}</strong>, object cache: <strong>{object ? "on" : "off"}</strong>
      </p>
      <div class="actions">
        <ConfirmButton label={page ? "Turn the page cache off" : "Turn the page cache on"} title="Change the page cache?" disabled={!active} onConfirm={async () => started((await api.sites.updateCacheSettings({ environmentId: env.id, pageCache: !page })).job)}>
          <p>nginx's FastCGI cache for anonymous visitors; emptied when it changes.</p>
        </ConfirmButton>
        <ConfirmButton label={object ? "Turn the object cache off" : "Turn the object cache on"} title="Change the object cache?" disabled={!active} onConfirm={async () => started((await api.sites.updateCacheSettings({ environmentId: env.id, objectCache: !object })).job)}>
          <p>Redis, under this environment's own key prefix.</p>
        </ConfirmButton>
        <ConfirmButton label="Purge" title="Empty both caches?" disabled={!active} onConfirm={async () => started((await api.sites.purgeCache({ environmentId: env.id })).job)}>
          <p>The next visits are served fresh.</p>
        </ConfirmButton>
      </div>
    </details>
  );
}

function DeleteSite({ siteId, slug, started }: { siteId: string; slug: string; started: Started }) {
  return (
    <div class="danger-zone">
      <ConfirmButton danger label="Delete site" title={`Delete ${slug}?`} onConfirm={async () => started((await api.sites.deleteSite({ siteId })).job)}>
        <p>Every environment of {slug} is removed from its node: files, databases, users, certificates.</p>
      </ConfirmButton>
    </div>
  );
}

