import { useEffect, useState } from "preact/hooks";

import { api, describeError, label, when } from "../api.js";
import { type Job, type JobEvent, JobStatus, JobStatusSchema, JobStepStatusSchema, JobTypeSchema } from "../gen/pressluft/v1/job_pb.js";
import { ConfirmButton, ErrorBox, JobProgress, Status } from "../ui.js";

/** Every job, live: a snapshot from WatchJobs, then each change as it happens. */
export function Jobs() {
  const [jobs, setJobs] = useState<Map<string, Job>>(new Map());
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    const abort = new AbortController();
    api.jobs.listJobs({ pageSize: 100 }).then(
      (r) => setJobs((m) => merge(m, r.jobs)),
      (e) => setError(describeError(e)),
    );
    (async () => {
      try {
        for await (const change of api.jobs.watchJobs({}, { signal: abort.signal })) {
          if (change.job) setJobs((m) => merge(m, [change.job as Job]));
        }
      } catch (e) {
        if (!abort.signal.aborted) setError(`The live job stream stopped: ${describeError(e)}`);
      }
    })();
    return () => abort.abort();
  }, []);
  const list = [...jobs.values()].sort((a, b) => Number((b.createTime?.seconds ?? 0n) - (a.createTime?.seconds ?? 0n)));
  return (
    <section aria-labelledby="jobs-title">
      <h1 id="jobs-title">Jobs</h1>
      <ErrorBox error={error} />
      {list.length === 0 && <p>No jobs yet.</p>}
      {list.length > 0 && (
        <table aria-label="jobs">
          <thead>
            <tr>
              <th scope="col">Job</th>
              <th scope="col">Type</th>
              <th scope="col">Status</th>
              <th scope="col">Step</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {list.map((job) => (
              <tr key={job.id}>
                <td>
                  <a href={`#/jobs/${job.id}`}>{job.summary || job.id.slice(0, 8)}</a>
                </td>
                <td>{label(JobTypeSchema, job.type)}</td>
                <td>
                  <Status text={label(JobStatusSchema, job.status)} />
                </td>
                <td>{job.progress && job.progress.totalSteps > 0 ? `${job.progress.currentStep}/${job.progress.totalSteps}` : "–"}</td>
                <td>{when(job.createTime)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function merge(current: Map<string, Job>, jobs: Job[]): Map<string, Job> {
  const next = new Map(current);
  for (const job of jobs) {
    const known = next.get(job.id);
    if (!known || known.version <= job.version) next.set(job.id, job);
  }
  return next;
}

/** One job: its steps and log lines as they happen (WatchJob replays the history first). */
export function JobPage({ jobId }: { jobId: string }) {
  const [events, setEvents] = useState<JobEvent[]>([]);
  const [job, setJob] = useState<Job | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    const abort = new AbortController();
    setEvents([]);
    (async () => {
      try {
        for await (const message of api.jobs.watchJob({ jobId }, { signal: abort.signal })) {
          if (message.job) setJob(message.job);
          if (message.event) setEvents((all) => [...all, message.event as JobEvent]);
        }
      } catch (e) {
        if (!abort.signal.aborted) setError(describeError(e));
      }
    })();
    return () => abort.abort();
  }, [jobId]);
  const steps = new Map<number, { name: string; status: string }>();
  const log: string[] = [];
  for (const event of events) {
    const e = event.event;
    if (e.case === "step") steps.set(e.value.index, { name: e.value.name, status: label(JobStepStatusSchema, e.value.status) });
    if (e.case === "logLine") log.push(e.value.text);
    if (e.case === "stateChange") log.push(`— ${label(JobStatusSchema, e.value.status)}${e.value.errorCode ? ` (${e.value.errorCode})` : ""}${e.value.message ? `: ${e.value.message}` : ""}`);
  }
  const running = job && (job.status === JobStatus.QUEUED || job.status === JobStatus.RUNNING);
  return (
    <section aria-labelledby="job-title">
      <h1 id="job-title">{job ? `${label(JobTypeSchema, job.type)}: ${job.summary}` : "Job"}</h1>
      <ErrorBox error={error} />
      <JobProgress jobId={jobId} />
      {running && (
        <ConfirmButton danger label="Cancel job" title="Cancel this job?" onConfirm={async () => void (await api.jobs.cancelJob({ jobId }))}>
          <p>A queued job is dropped; a running one has its playbook stopped.</p>
        </ConfirmButton>
      )}
      <h2>Steps</h2>
      <ol class="steps">
        {[...steps.entries()].map(([index, step]) => (
          <li key={index} value={index}>
            {step.name} <Status text={step.status === "ok" || step.status === "changed" ? "succeeded" : step.status === "started" ? "running" : step.status} />
          </li>
        ))}
      </ol>
      <h2>Log</h2>
      {/* Focusable: a long log scrolls, and keyboard users must be able to scroll it too. */}
      <pre class="log" aria-live="polite" aria-label="job log" tabIndex={0}>
        {log.join("\n")}
      </pre>
    </section>
  );
}
