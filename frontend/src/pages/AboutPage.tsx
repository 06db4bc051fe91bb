import { useEffect } from "react";

import { VERDICT_TEXT } from "../lib/format";

/** What a score means and, just as important, what it does not. */
export function AboutPage() {
  useEffect(() => {
    document.title = "About · DeepScreen";
  }, []);
  return (
    <article className="prose">
      <h1>What a DeepScreen score means</h1>
      <p>
        DeepScreen finds the faces in an image or in frames sampled from a video and asks a neural network, trained on
        public deepfake data sets, how likely each face is to be a face swap. The face scores are combined per person and
        over the whole file into one <strong>manipulation score</strong> between 0% and 100%.
      </p>
      <h2>How to read it</h2>
      <p>
        The score is turned into one of three outcomes by two thresholds, set on labelled real and manipulated media for a
        stated false-alarm rate (the share of real media wrongly flagged). The result page says which rate, and what was
        measured on media not used to set it.
      </p>
      <ul>
        <li>
          <strong>{VERDICT_TEXT.manipulated.title}</strong>: the score reached the threshold. The faces show traces the model
          has learned to associate with manipulated media. Treat it as a reason to look closer, not as a finding.
        </li>
        <li>
          <strong>{VERDICT_TEXT.inconclusive.title}</strong>: the score lies between the two thresholds, no face was found,
          the model had too few faces to go on, or the same face scored very differently from frame to frame. The reasons
          are listed with the result.
        </li>
        <li>
          <strong>{VERDICT_TEXT.no_signs.title}</strong>: the model found no such traces. New generators, heavy
          compression, or edits that leave the face untouched can all go unnoticed.
        </li>
      </ul>
      <p>
        A score close to a threshold is marked <strong>borderline</strong>: a small change in the file could turn the
        outcome. Where one of the model's known weak spots (small faces, strong compression, faces generated whole)
        applies, the result says so.
      </p>
      <h2>What it does not mean</h2>
      <ul>
        <li>It is not legal or forensic proof, and must not be the only basis for a decision about a person.</li>
        <li>It does not say who made the media, whether it was edited in other ways, or whether its content is true.</li>
        <li>
          The model learned from particular public data sets; on other kinds of media (other generators, cameras,
          compression) its scores can be less reliable. The model card in the project's documentation says how it was
          measured.
        </li>
      </ul>
      <h2>The heat maps</h2>
      <p>
        The heat maps (Grad-CAM) show which regions of a face weighed most in its score. They explain what the model
        reacted to, which helps spot mistakes; they do not mark "the fake part".
      </p>
      <h2>Your files</h2>
      <p>
        Uploads are private to you. You can delete a job and its files at any time from its page. The result names the
        model version, so you can tell which model produced a score.
      </p>
    </article>
  );
}
