import { api, label, when } from "../api.js";
import { AuditResultSchema } from "../gen/pressluft/v1/audit_pb.js";
import { ErrorBox, Loading, Status, useLoad } from "../ui.js";

export function Audit() {
  const events = useLoad(async () => (await api.audit.listAuditEvents({ pageSize: 200 })).events);
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Activity</h1>
      <ErrorBox error={events.error} />
      {!events.value && !events.error && <Loading what="the audit log" />}
      {events.value && (
        <table aria-label="audit log">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Who</th>
              <th scope="col">What</th>
              <th scope="col">On</th>
              <th scope="col">Result</th>
              <th scope="col">Detail</th>
            </tr>
          </thead>
          <tbody>
            {events.value.map((e) => (
              <tr key={String(e.id)}>
                <td>{when(e.time)}</td>
                <td>{e.actor}</td>
                <td>{e.action}</td>
                <td>
                  {e.resourceType} {e.resourceId.slice(0, 8)}
                </td>
                <td>
                  <Status text={label(AuditResultSchema, e.result)} />
                </td>
                <td>{e.detail}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
