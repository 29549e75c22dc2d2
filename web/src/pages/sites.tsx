import { useState } from "preact/hooks";

import { api, label } from "../api.js";
import { SiteStatusSchema } from "../gen/pressluft/v1/site_pb.js";
import { ErrorBox, Loading, Status, useJobs, useLoad, useSubmit } from "../ui.js";

export function Sites() {
  const sites = useLoad(async () => (await api.sites.listSites({ pageSize: 500 })).sites);
  const jobs = useJobs(() => sites.reload());
  return (
    <section aria-labelledby="sites-title">
      <h1 id="sites-title">Sites</h1>
      <ErrorBox error={sites.error} />
      {!sites.value && !sites.error && <Loading what="sites" />}
      {sites.value && sites.value.length === 0 && <p>No sites yet. Create one below.</p>}
      {sites.value && sites.value.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Site</th>
              <th scope="col">Status</th>
              <th scope="col">Environments</th>
              <th scope="col">Address</th>
            </tr>
          </thead>
          <tbody>
            {sites.value.map((site) => {
              const production = site.environments.find((e) => e.id === site.productionEnvironmentId);
              return (
                <tr key={site.id}>
                  <td>
                    <a href={`#/sites/${site.id}`}>{site.name}</a> <span class="muted">{site.slug}</span>
                  </td>
                  <td>
                    <Status text={label(SiteStatusSchema, site.status)} />
                  </td>
                  <td>{site.environments.map((e) => e.name).join(", ")}</td>
                  <td>{production?.url ? <a href={production.url}>{production.url}</a> : "–"}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {jobs.view}
      <CreateSite onCreated={(job) => (jobs.started(job), sites.reload())} />
    </section>
  );
}

function CreateSite({ onCreated }: { onCreated: (job?: import("../gen/pressluft/v1/job_pb.js").Job) => void }) {
  const nodes = useLoad(async () => (await api.nodes.listNodes({ pageSize: 500 })).nodes);
  const [name, setName] = useState("");
  const [slug, setSlug] = useState("");
  const [nodeId, setNodeId] = useState("");
  const { busy, error, submit } = useSubmit(async () => {
    const response = await api.sites.createSite({ name, slug, nodeId });
    setName("");
    setSlug("");
    onCreated(response.job);
  });
  return (
    <form class="card" onSubmit={submit} aria-labelledby="create-site-title">
      <h2 id="create-site-title">Create a site</h2>
      <label>
        Name
        <input name="site-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <label>
        Slug (lowercase letters, digits, hyphens)
        <input name="site-slug" required pattern="[a-z0-9\-]{1,40}" value={slug} onInput={(e) => setSlug(e.currentTarget.value)} />
      </label>
      <label for="site-node">Node</label>
      <select id="site-node" name="site-node" value={nodeId} onChange={(e) => setNodeId(e.currentTarget.value)}>
          <option value="">the default node</option>
          {nodes.value?.map((node) => (
            <option key={node.id} value={node.id}>
              {node.name}
            </option>
          ))}
      </select>
      <ErrorBox error={error} />
      <button type="submit" class="primary" disabled={busy}>
        {busy ? "Creating…" : "Create site"}
      </button>
    </form>
  );
}
