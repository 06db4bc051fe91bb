"""Link faces into tracks, one per person: an online pass in time order, then fragments re-linked.

Box overlap between neighbouring samples is not enough (issue 16): detections drop out for a
second or two (a turned head, blur) and videos cut to a closer shot, and each time one person
became two tracks with different scores, the file verdict resting on whichever half scored
higher. So linking here uses:

- time in seconds, not sample counts: samples of a long video are seconds apart, bursts minutes;
- the move of the face centre, in face sizes, with a gate that widens with the time gap;
- the change of face size (a ratio gate);
- appearance: the cosine similarity of the classifier's pooled features of the crops.

Appearance is weak identity evidence: the classifier was trained to tell real from fake, not
one person from another. On the shared clips, two different people's mean features reach a
cosine of 0.93, while one person's consecutive faces drop to 0.27 in a blurred frame. So it
breaks ties between nearby candidates and, averaged over a few faces, vetoes re-links of
fragments that look different; alone (position and size ignored) it links only across a short
gap and only when very high (a cut to a closer shot of the same person). A real face-embedding
model would do better; none ships inside a wheel (facenet-pytorch's InceptionResnetV1 weights
are downloaded at run time, which DeepScreen never does).

Two faces in one frame are never in one track.

Assignment is greedy from the lowest cost up rather than Hungarian (scipy): with at most a few
faces per frame the two agree, and scipy's import would add 0.4 s to every CLI run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ml.crop import Box


@dataclass(frozen=True)
class TrackingParams:
    """Gates of the two passes; `PipelineConfig` carries the first three."""

    max_gap_seconds: float = 2.0
    """Online: a track takes a new face at most this long after its last one."""
    max_shift: float = 0.6
    """Online: the face centre may move this many face sizes between consecutive samples..."""
    shift_per_second: float = 0.6
    """...plus this many per second of gap (capped at `relink_max_shift`)."""
    max_scale: float = 1.5
    """Face size may change by at most this ratio (either way) between linked faces."""
    relink_max_shift: float = 1.5
    """Re-link: the next fragment starts within this many face sizes of where the last one ended."""
    relink_min_similarity: float = 0.6
    """Re-link by position also needs this appearance similarity (means of `RELINK_WINDOW` faces)."""
    cut_max_gap_seconds: float = 2.0
    """Re-link by appearance alone (a cut): only across a gap this short..."""
    cut_min_similarity: float = 0.9
    """...and only with this similarity of the fragments' boundary faces."""
    appearance_weight: float = 0.5
    """Cost of (1 - cosine similarity), against a centre move of a full gate's width costing 1."""


RELINK_WINDOW = 3
"""Faces at the end of one fragment and the start of the next averaged for re-linking: one
blurred face (cosine 0.27 to its neighbour on a shared clip) must not decide alone."""


@dataclass(frozen=True)
class TrackedFace:
    """What linking needs of one face."""

    frame: int
    """Index of the sampled frame, in time order."""
    seconds: float
    box: Box
    embedding: np.ndarray | None = None
    """Unit-length appearance vector; None when not known (tests, face-crop inputs)."""


@dataclass
class _Fragment:
    faces: list[int] = field(default_factory=list)  # indices into the faces list, in time order

    def first(self, faces: Sequence[TrackedFace]) -> TrackedFace:
        return faces[self.faces[0]]

    def last(self, faces: Sequence[TrackedFace]) -> TrackedFace:
        return faces[self.faces[-1]]


def link_tracks(faces: Sequence[TrackedFace], params: TrackingParams | None = None) -> list[int]:
    """A track id per face (same order), one per person; ids count from 0 in order of first appearance."""
    params = params or TrackingParams()
    order = sorted(range(len(faces)), key=lambda i: (faces[i].seconds, faces[i].frame))
    fragments = _online(faces, order, params)
    fragments = _relink(faces, fragments, params)
    fragments.sort(key=lambda f: (faces[f.faces[0]].seconds, faces[f.faces[0]].frame))
    ids = [0] * len(faces)
    for track, fragment in enumerate(fragments):
        for i in fragment.faces:
            ids[i] = track
    return ids


def _online(faces: Sequence[TrackedFace], order: list[int], params: TrackingParams) -> list[_Fragment]:
    """Frame by frame, each face joins the cheapest live track within the gates, or starts one."""
    fragments: list[_Fragment] = []
    position = 0
    while position < len(order):
        frame = faces[order[position]].frame
        members = []
        while position < len(order) and faces[order[position]].frame == frame:
            members.append(order[position])
            position += 1
        now = faces[members[0]].seconds
        live = [t for t, f in enumerate(fragments) if now - f.last(faces).seconds <= params.max_gap_seconds
                and f.last(faces).frame != frame]
        pairs = sorted(
            (cost, i, t) for i in members for t in live
            if (cost := _online_cost(fragments[t].last(faces), faces[i], _recent(faces, fragments[t]),
                                     params)) is not None
        )
        taken_faces: set[int] = set()
        taken_tracks: set[int] = set()
        for _, i, t in pairs:
            if i in taken_faces or t in taken_tracks:
                continue
            fragments[t].faces.append(i)
            taken_faces.add(i)
            taken_tracks.add(t)
        for i in members:
            if i not in taken_faces:
                fragments.append(_Fragment([i]))
    return fragments


def _online_cost(previous: TrackedFace, face: TrackedFace, appearance: np.ndarray | None,
                 params: TrackingParams) -> float | None:
    """Cost of `face` continuing a track that last had `previous`; None when a gate fails."""
    gap = max(0.0, face.seconds - previous.seconds)
    gate = min(params.max_shift + params.shift_per_second * gap, params.relink_max_shift)
    shift = centre_shift(previous.box, face.box)
    if shift > gate or scale_change(previous.box, face.box) > params.max_scale:
        return None
    cost = shift / gate
    similarity = _similarity(appearance, face.embedding)
    if similarity is not None:
        cost += params.appearance_weight * (1.0 - similarity)
    return cost


def _relink(faces: Sequence[TrackedFace], fragments: list[_Fragment], params: TrackingParams) -> list[_Fragment]:
    """Join fragments one person left behind: cheapest pair first, until no pair passes the gates.

    A pair qualifies when one ends before the other starts (never two faces in one frame) and
    either the second starts near where the first ended, of a similar size and appearance, or
    it starts soon after and looks very much alike (a cut to another shot of the same person).
    """
    fragments = list(fragments)
    while True:
        best: tuple[float, int, int] | None = None
        for a, first in enumerate(fragments):
            for b, second in enumerate(fragments):
                if a == b or first.last(faces).seconds >= second.first(faces).seconds:
                    continue
                cost = _relink_cost(faces, first, second, params)
                if cost is not None and (best is None or cost < best[0]):
                    best = (cost, a, b)
        if best is None:
            return fragments
        _, a, b = best
        fragments[a] = _Fragment(fragments[a].faces + fragments[b].faces)
        del fragments[b]


def _relink_cost(faces: Sequence[TrackedFace], first: _Fragment, second: _Fragment,
                 params: TrackingParams) -> float | None:
    end, start = first.last(faces), second.first(faces)
    similarity = _similarity(_mean(faces, first.faces[-RELINK_WINDOW:]), _mean(faces, second.faces[:RELINK_WINDOW]))
    shift = centre_shift(end.box, start.box)
    near = shift <= params.relink_max_shift and scale_change(end.box, start.box) <= params.max_scale
    if near and (similarity is None or similarity >= params.relink_min_similarity):
        return shift / params.relink_max_shift + params.appearance_weight * (1.0 - (similarity or 1.0))
    gap = start.seconds - end.seconds
    if similarity is not None and gap <= params.cut_max_gap_seconds and similarity >= params.cut_min_similarity:
        return 1.0 + params.appearance_weight * (1.0 - similarity)  # after every positional match
    return None


def _recent(faces: Sequence[TrackedFace], fragment: _Fragment) -> np.ndarray | None:
    return _mean(faces, fragment.faces[-RELINK_WINDOW:])


def _mean(faces: Sequence[TrackedFace], members: Sequence[int]) -> np.ndarray | None:
    vectors = [faces[i].embedding for i in members if faces[i].embedding is not None]
    if not vectors:
        return None
    mean = np.mean(vectors, axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else None


def _similarity(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    if a is None or b is None:
        return None
    return float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


def face_size(box: Box) -> float:
    """Geometric mean of a box's sides: the unit positions are measured in."""
    return math.sqrt(max(box[2] - box[0], 1e-6) * max(box[3] - box[1], 1e-6))


def centre_shift(a: Box, b: Box) -> float:
    """Distance between two boxes' centres, in face sizes (their mean)."""
    dx = (a[0] + a[2] - b[0] - b[2]) / 2.0
    dy = (a[1] + a[3] - b[1] - b[3]) / 2.0
    return math.hypot(dx, dy) / ((face_size(a) + face_size(b)) / 2.0)


def scale_change(a: Box, b: Box) -> float:
    """Ratio of the larger face size to the smaller (1 = the same size)."""
    sa, sb = face_size(a), face_size(b)
    return max(sa, sb) / min(sa, sb)
