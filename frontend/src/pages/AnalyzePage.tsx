import { useEffect, useRef, useState } from "react";
import { useLocation, useNavigate } from "react-router-dom";

import { ApiError } from "../api/client";
import { rememberJobToken } from "../api/credentials";
import { uploadFile } from "../api/upload";
import { Dropzone } from "../components/Dropzone";
import { ErrorMessage } from "../components/ErrorMessage";
import { UploadLimits } from "../components/UploadLimits";
import { accountsEnabled, useSession } from "../session";

const ACCEPT = "image/jpeg,image/png,image/webp,video/mp4,video/quicktime,video/webm,video/x-matroska,video/x-msvideo,.mkv,.avi,.mov";

/** A 4xx answer is about the file; anything else is about the service or the network. */
function isRejection(error: unknown): boolean {
  return error instanceof ApiError && error.status >= 400 && error.status < 500;
}

/** What the job page passes when the user asks to analyse a canceled job's file again. */
export interface RerunState {
  rerun: { filename: string | null; jobId: string };
}

function rerunOf(state: unknown): RerunState["rerun"] | null {
  if (typeof state !== "object" || state === null || !("rerun" in state)) return null;
  return (state as RerunState).rerun;
}

/** Upload a file; once the API has accepted it, the job page takes over. */
export function AnalyzePage() {
  const navigate = useNavigate();
  const location = useLocation();
  const rerun = rerunOf(location.state);
  const session = useSession();
  const { refresh } = session;
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const abortRef = useRef<AbortController | null>(null);

  useEffect(() => {
    document.title = "Analyse · DeepScreen";
    return () => abortRef.current?.abort();
  }, []);

  const start = async (file: File) => {
    setError(null);
    setProgress(0);
    const controller = new AbortController();
    abortRef.current = controller;
    try {
      const created = await uploadFile(file, { onProgress: setProgress, signal: controller.signal });
      // Without an account the token is the only key to this job: keep it in this browser.
      if (created.access_token) rememberJobToken(created.id, created.access_token);
      void refresh(); // today's quota changed
      navigate(`/jobs/${encodeURIComponent(created.id)}`);
    } catch (exc) {
      setProgress(null);
      if (exc instanceof DOMException && exc.name === "AbortError") return;
      setError(exc);
    }
  };

  const uploading = progress !== null && error === null;
  return (
    <>
      <section className="hero">
        <h1>Check a face for deepfake manipulation</h1>
        <p className="lead">
          Upload a photo or a short video. DeepScreen finds the faces, scores each one for signs of face-swap manipulation and
          shows where the model looked.
        </p>
      </section>
      <section className="card" aria-labelledby="upload-title">
        <h2 id="upload-title" className="visually-hidden">
          Upload
        </h2>
        {rerun ? (
          <p className="alert" data-testid="rerun-note">
            The browser keeps no copy of your files: choose <strong>{rerun.filename ?? "the file"}</strong> again to analyse it
            anew.
          </p>
        ) : null}
        <Dropzone onFile={(file) => void start(file)} disabled={uploading} accept={ACCEPT} />
        {uploading ? (
          <div className="upload-progress" data-testid="upload-progress">
            <label htmlFor="upload-bar">Uploading… {Math.round((progress ?? 0) * 100)}%</label>
            <progress id="upload-bar" className="bar" max={1} value={progress ?? 0} />
            <button type="button" className="button button-secondary" onClick={() => abortRef.current?.abort()}>
              Cancel upload
            </button>
          </div>
        ) : null}
        <ErrorMessage error={error} title={isRejection(error) ? "This file was not accepted" : "The upload did not go through"} />
        <UploadLimits limits={session.account?.limits ?? session.config?.limits ?? null} quota={session.account?.quota ?? null} accounts={accountsEnabled(session)} />
        <p className="muted small">
          Files are private to you. A score is an estimate from a machine-learning model, not legal proof.
        </p>
      </section>
    </>
  );
}
