// Shared pieces: async loading, errors, status badges, confirmation dialogs, and live job
// progress (WatchJob) that every long action shows.
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";

import { api, describeError, label } from "./api.js";
import {
  type Job,
  JobStatus,
  JobStatusSchema,
} from "./gen/pressluft/v1/job_pb.js";

/** Loads `load()` and reloads when `deps` change or `reload()` is called. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[] = []) {
  const [value, setValue] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (v) => live && (setValue(v), setError(undefined)),
      (e) => live && setError(describeError(e)),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { value, error, reload: () => setTick((t) => t + 1) };
}

/** A form submission: `busy` while `work` runs, its error in plain words after. */
export function useSubmit(work: () => Promise<void>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const submit = async (event?: Event) => {
    event?.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await work();
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, submit };
}

export function ErrorBox({ error }: { error?: string }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error}
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return <p class="muted" aria-busy="true">Loading {what}…</p>;
}

/** A status word with a colour class; the word itself carries the meaning. */
export function Status({ text }: { text: string }) {
  const tone =
    ["active", "succeeded", "healthy", "clean", "completed"].includes(text)
      ? "good"
      : ["failed", "unreachable", "unhealthy", "drifted", "denied"].includes(text)
        ? "bad"
        : ["queued", "pending", "running", "creating", "cloning", "deploying", "restoring", "updating", "promoting", "provisioning", "deleting"].includes(text)
          ? "busy"
          : "quiet";
  return <span class={`status ${tone}`}>{text}</span>;
}

/** A button that asks first: a modal dialog saying what will happen. */
export function ConfirmButton(props: {
  label: string;
  title: string;
  children: ComponentChildren;
  onConfirm: () => Promise<void> | void;
  danger?: boolean;
  disabled?: boolean;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const confirm = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await props.onConfirm();
      dialog.current?.close();
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button
        type="button"
        class={props.danger ? "danger" : ""}
        disabled={props.disabled}
        onClick={() => {
          setError(undefined);
          dialog.current?.showModal();
        }}
      >
        {props.label}
      </button>
      <dialog ref={dialog} aria-label={props.title}>
        <h2>{props.title}</h2>
        <div>{props.children}</div>
        <ErrorBox error={error} />
        <div class="actions">
          <button type="button" onClick={() => dialog.current?.close()}>
            Cancel
          </button>
          <button type="button" class={props.danger ? "danger" : "primary"} disabled={busy} onClick={confirm}>
            {busy ? "Working…" : `Yes, ${props.label.toLowerCase()}`}
          </button>
        </div>
      </dialog>
    </>
  );
}

const FINAL = [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED];

/** A job followed live (WatchJob): progress bar, current step, outcome; `onEnd` once it ends. */
export function JobProgress({ jobId, onEnd }: { jobId: string; onEnd?: (job: Job) => void }) {
  const [job, setJob] = useState<Job | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    const abort = new AbortController();
    (async () => {
      try {
        let last: Job | undefined;
        for await (const message of api.jobs.watchJob({ jobId }, { signal: abort.signal })) {
          if (message.job) {
            last = message.job;
            setJob(message.job);
          }
        }
        if (last && FINAL.includes(last.status)) onEnd?.(last);
      } catch (e) {
        if (!abort.signal.aborted) setError(describeError(e));
      }
    })();
    return () => abort.abort();
  }, [jobId]);
  if (error) return <ErrorBox error={error} />;
  if (!job) return <p class="muted">Job {jobId.slice(0, 8)} queued…</p>;
  const p = job.progress;
  const total = p?.totalSteps ?? 0;
  const current = p?.currentStep ?? 0;
  const status = label(JobStatusSchema, job.status);
  return (
    <div class="job-progress" data-job={job.id} data-status={status}>
      <div>
        <a href={`#/jobs/${job.id}`}>{job.summary || job.id}</a> <Status text={status} />
      </div>
      <progress max={total || 1} value={FINAL.includes(job.status) ? total || 1 : current} aria-label="progress" />
      <div class="muted">
        {total > 0 ? `step ${current}/${total}: ${p?.stepName ?? ""}` : "waiting for a worker"}
      </div>
      {job.errorCode && (
        <p class="error">
          {job.errorCode}: {job.errorMessage}
        </p>
      )}
    </div>
  );
}

/** Jobs started on this page, each followed live. */
export function useJobs(onEnd?: (job: Job) => void) {
  const [ids, setIds] = useState<string[]>([]);
  const view = (
    <div class="jobs-live" aria-live="polite">
      {ids.map((id) => (
        <JobProgress key={id} jobId={id} onEnd={onEnd} />
      ))}
    </div>
  );
  return { started: (job?: Job) => job && setIds((all) => [job.id, ...all]), view };
}
