/**
 * Upload with progress. openapi-fetch is built on `fetch`, which cannot report upload progress,
 * so this one request uses XMLHttpRequest; its URL, form field and response types still come
 * from the generated schema, so a change in the API breaks the build here as everywhere else.
 */
import { ApiError, type JobCreated } from "./client";
import { credentialHeaders } from "./credentials";
import type { paths } from "./schema";

type CreateJob = paths["/api/jobs"]["post"];
type CreateJobForm = NonNullable<CreateJob["requestBody"]>["content"]["multipart/form-data"];
type CreateJobResponse = CreateJob["responses"][202]["content"]["application/json"];

const CREATE_JOB_URL: keyof paths = "/api/jobs";
const FILE_FIELD: keyof CreateJobForm = "file";

export interface UploadOptions {
  onProgress?: (fraction: number) => void;
  signal?: AbortSignal;
}

export function uploadFile(file: File, options: UploadOptions = {}): Promise<JobCreated> {
  return new Promise<CreateJobResponse>((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", CREATE_JOB_URL);
    xhr.responseType = "text";
    xhr.withCredentials = true;
    xhr.setRequestHeader("Accept", "application/json");
    for (const [name, value] of Object.entries(credentialHeaders("POST", CREATE_JOB_URL))) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && event.total > 0) options.onProgress?.(event.loaded / event.total);
    };
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300 && body !== null) {
        options.onProgress?.(1);
        resolve(body as CreateJobResponse);
      } else {
        reject(ApiError.fromBody(xhr.status, body));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, "network", "The upload was interrupted; the server could not be reached."));
    xhr.onabort = () => reject(new DOMException("Upload canceled", "AbortError"));
    options.signal?.addEventListener("abort", () => xhr.abort(), { once: true });
    const form = new FormData();
    form.append(FILE_FIELD, file, file.name);
    xhr.send(form);
  });
}
