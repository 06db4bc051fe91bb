import { useId, useRef, useState, type DragEvent } from "react";

import { formatBytes } from "../lib/format";

export interface DropzoneProps {
  onFile: (file: File) => void;
  disabled?: boolean;
  accept?: string;
}

/**
 * Drop a file anywhere on the zone, or use its "Choose a file" button (the keyboard and
 * screen-reader path: a real button, nothing nested in a fake one). The file input stays in the
 * DOM, hidden, for the button and for browser automation.
 */
export function Dropzone({ onFile, disabled = false, accept }: DropzoneProps) {
  const hintId = useId();
  const inputRef = useRef<HTMLInputElement>(null);
  const [dragging, setDragging] = useState(false);
  const [chosen, setChosen] = useState<File | null>(null);

  const take = (file: File | undefined) => {
    if (!file || disabled) return;
    setChosen(file);
    onFile(file);
  };

  const choose = () => {
    if (!disabled) inputRef.current?.click();
  };

  const onDrop = (event: DragEvent<HTMLDivElement>) => {
    event.preventDefault();
    setDragging(false);
    take(event.dataTransfer.files[0]);
  };

  return (
    <div
      className={`dropzone${dragging ? " dropzone-active" : ""}${disabled ? " dropzone-disabled" : ""}`}
      onClick={choose}
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
      <p className="dropzone-title">Drop an image or a video here</p>
      <button
        type="button"
        className="button"
        disabled={disabled}
        aria-describedby={hintId}
        data-testid="choose-file"
        onClick={(event) => {
          event.stopPropagation();
          choose();
        }}
      >
        Choose a file
      </button>
      <p id={hintId} className="muted small">
        JPEG, PNG or WebP images; MP4, MOV, WebM, MKV or AVI videos.
      </p>
      {chosen ? (
        <p className="small">
          Selected: <strong>{chosen.name}</strong> ({formatBytes(chosen.size)})
        </p>
      ) : null}
      <input
        ref={inputRef}
        className="visually-hidden"
        type="file"
        accept={accept}
        disabled={disabled}
        tabIndex={-1}
        aria-hidden="true"
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
