import { useState } from "preact/hooks";

import { api, describeError, label, when } from "../api.js";
import { type Node, NodeStatusSchema } from "../gen/pressluft/v1/node_pb.js";
import { ConfirmButton, ErrorBox, Loading, Status, useJobs, useLoad, useSubmit } from "../ui.js";

export function Nodes() {
  const nodes = useLoad(async () => (await api.nodes.listNodes({ pageSize: 500 })).nodes);
  const key = useLoad(async () => (await api.nodes.getControlPlaneKey({})).publicKey);
  const jobs = useJobs(() => nodes.reload());
  return (
    <section aria-labelledby="nodes-title">
      <h1 id="nodes-title">Nodes</h1>
      <ErrorBox error={nodes.error} />
      {!nodes.value && !nodes.error && <Loading what="nodes" />}
      {nodes.value && nodes.value.length === 0 && <p>No nodes yet. Register one below.</p>}
      {nodes.value && nodes.value.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Host</th>
              <th scope="col">Status</th>
              <th scope="col">PHP</th>
              <th scope="col">Last seen</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {nodes.value.map((node) => (
              <NodeRow key={node.id} node={node} started={jobs.started} />
            ))}
          </tbody>
        </table>
      )}
      {jobs.view}
      <AddNode onAdded={nodes.reload} />
      {key.value && (
        <details>
          <summary>The control plane's SSH key (add it to the node's authorized_keys)</summary>
          <pre class="key">{key.value}</pre>
        </details>
      )}
    </section>
  );
}

function NodeRow({ node, started }: { node: Node; started: (job?: import("../gen/pressluft/v1/job_pb.js").Job) => void }) {
  const [facts, setFacts] = useState<string | undefined>();
  const showFacts = async () => {
    try {
      const [php, db] = await Promise.all([
        api.queries.getPhpVersion({ nodeId: node.id }),
        api.queries.getDatabaseStatus({ nodeId: node.id }),
      ]);
      setFacts(`PHP ${php.version} (installed ${php.installedVersions.join(", ")}); MariaDB ${db.up ? `${db.version}, ${db.connections} connections` : "down"}`);
    } catch (e) {
      setFacts(describeError(e));
    }
  };
  return (
    <tr>
      <td>{node.name}</td>
      <td>
        {node.sshUser}@{node.hostname}:{node.sshPort}
      </td>
      <td>
        <Status text={label(NodeStatusSchema, node.status)} />
        {node.statusMessage && <div class="muted">{node.statusMessage}</div>}
      </td>
      <td>{node.phpVersions.join(", ") || "–"}</td>
      <td>{when(node.lastSeenTime)}</td>
      <td class="actions">
        <ConfirmButton label="Provision" title={`Provision ${node.name}?`} onConfirm={async () => started((await api.nodes.provisionNode({ nodeId: node.id })).job)}>
          <p>Installs and hardens nginx, PHP-FPM, MariaDB, Redis and the firewall on {node.hostname}. Safe to run again.</p>
        </ConfirmButton>
        <button type="button" onClick={showFacts}>
          Facts
        </button>
        {facts && <div class="muted">{facts}</div>}
      </td>
    </tr>
  );
}

function AddNode({ onAdded }: { onAdded: () => void }) {
  const [name, setName] = useState("");
  const [hostname, setHostname] = useState("");
  const [port, setPort] = useState("22");
  const [scanned, setScanned] = useState<{ hostKey: string; fingerprint: string } | undefined>();
  const scan = useSubmit(async () => {
    const key = await api.nodes.scanNodeHostKey({ hostname, sshPort: Number(port) });
    setScanned({ hostKey: key.hostKey, fingerprint: key.fingerprint });
  });
  const register = useSubmit(async () => {
    await api.nodes.createNode({ name, hostname, sshPort: Number(port), hostKey: scanned?.hostKey ?? "" });
    setScanned(undefined);
    setName("");
    setHostname("");
    onAdded();
  });
  return (
    <form class="card" onSubmit={scan.submit} aria-labelledby="add-node-title">
      <h2 id="add-node-title">Register a node</h2>
      <label>
        Name
        <input name="node-name" required pattern="[a-z0-9\-]+" value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <label>
        Hostname or IP
        <input name="node-hostname" required value={hostname} onInput={(e) => setHostname(e.currentTarget.value)} />
      </label>
      <label>
        SSH port
        <input name="node-port" type="number" min="1" max="65535" value={port} onInput={(e) => setPort(e.currentTarget.value)} />
      </label>
      <button type="submit">Check the host key</button>
      {scanned && (
        <div role="group" aria-label="host key">
          <p>
            The node presents <code>{scanned.fingerprint}</code>. Compare it with <code>ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub</code> on the node.
          </p>
          <button type="button" class="primary" disabled={register.busy} onClick={() => register.submit()}>
            Pin this key and register
          </button>
        </div>
      )}
      <ErrorBox error={scan.error ?? register.error} />
    </form>
  );
}
