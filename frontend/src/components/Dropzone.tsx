import { useId, useRef, useState, type DragEvent, type KeyboardEvent } from "react";

import { formatBytes } from "../lib/format";

export interface DropzoneProps {
  onFile: (file: File) => void;
  disabled?: boolean;
  accept?: string;
}

/**
 * Drop a file or pick one. The whole zone is one focusable button (Enter/Space open the file
 * picker), so it works without a mouse; the real `<input type=file>` stays in the DOM for
 * assistive tools and browser automation.
 */
export function Dropzone({ onFile, disabled = false, accept }: DropzoneProps) {
  const inputId = useId();
  const inputRef = useRef<HTMLInputElement>(null);
  const [dragging, setDragging] = useState(false);
  const [chosen, setChosen] = useState<File | null>(null);

  const take = (file: File | undefined) => {
    if (!file || disabled) return;
    setChosen(file);
    onFile(file);
  };

  const onDrop = (event: DragEvent<HTMLDivElement>) => {
    event.preventDefault();
    setDragging(false);
    take(event.dataTransfer.files[0]);
  };

  const onKeyDown = (event: KeyboardEvent<HTMLDivElement>) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      inputRef.current?.click();
    }
  };

  return (
    <div
      className={`dropzone${dragging ? " dropzone-active" : ""}${disabled ? " dropzone-disabled" : ""}`}
      role="button"
      tabIndex={disabled ? -1 : 0}
      aria-disabled={disabled}
      aria-describedby={`${inputId}-hint`}
      onClick={() => !disabled && inputRef.current?.click()}
      onKeyDown={onKeyDown}
      onDragOver={(event) => {
        event.preventDefault();
        if (!disabled) setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={onDrop}
      data-testid="dropzone"
    >
      <svg aria-hidden="true" viewBox="0 0 24 24" width="40" height="40" className="dropzone-icon">
        <path d="M12 16V4m0 0-4 4m4-4 4 4M4 16v3a1 1 0 0 0 1 1h14a1 1 0 0 0 1-1v-3" fill="none" stroke="currentColor" strokeWidth="1.8" strokeLinecap="round" strokeLinejoin="round" />
      </svg>
      <p className="dropzone-title">
        <label htmlFor={inputId} onClick={(event) => event.stopPropagation()}>
          Drop an image or a video here, or <span className="link-like">choose a file</span>
        </label>
      </p>
      <p id={`${inputId}-hint`} className="muted small">
        JPEG, PNG, WebP images; MP4, MOV, WebM, MKV, AVI videos.
      </p>
      {chosen ? (
        <p className="small">
          Selected: <strong>{chosen.name}</strong> ({formatBytes(chosen.size)})
        </p>
      ) : null}
      <input
        ref={inputRef}
        id={inputId}
        className="visually-hidden"
        type="file"
        accept={accept}
        disabled={disabled}
        tabIndex={-1}
        data-testid="file-input"
        onClick={(event) => event.stopPropagation()}
        onChange={(event) => {
          take(event.target.files?.[0]);
          event.target.value = "";
        }}
      />
    </div>
  );
}
