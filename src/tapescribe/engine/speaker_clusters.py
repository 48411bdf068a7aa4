"""From speaker embeddings to speakers: senko's spectral clustering, the merge of clusters that are one
voice, the merge down to a number asked for, and the numbering S1, S2, ... by speaking time.

Pure numpy except `cluster_voices`, which runs senko's spectral clustering with its own merge turned
off, so the merge here is the only one. Past 20 minutes senko would switch to UMAP + HDBSCAN over all
the embeddings at once; that found one speaker in 22 minutes of two women and in an hour of two men
and a woman that the spectral path tells apart at 20 minutes (docs/performance.md, Speakers), and
held about 450 MiB more for an hour. Instead a long recording is clustered CHUNK_SECONDS at a time,
spectrally as a short one is, and the clusters of all its chunks are then merged as one
recording's are: a voice in several chunks has centroids far more alike than two voices.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from tapescribe.engine.speaker_labels import SpeakerTurn

LONG_AUDIO_SECONDS = 1200.0  # past this (senko's own switch), the recording is clustered in chunks
CHUNK_SECONDS = 600.0  # a chunk of a long recording: where the spectral path is measured right
SPECTRAL_PVAL = 0.2  # the share of each subsegment's neighbours the spectral affinity graph keeps


def unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float64)
    return vector / (np.linalg.norm(vector) or 1.0)


def cluster_voices(
    model: Any,
    embeddings: np.ndarray,
    subsegments: list[tuple[float, float]],
    merge_threshold: float,
) -> tuple[list[tuple[str, float, float]], dict[str, np.ndarray]]:
    """Turns (speaker, start, end) and each speaker's centroid, from the subsegments' embeddings.

    Why two alike voices became one: under 20 minutes senko's spectral clustering keeps 1.2% of each
    subsegment's neighbours (6 at least) in its affinity graph, which on a few minutes of speech cuts
    one voice into 5 to 10 clusters, so the merge decided how many speakers there were, and a merge
    threshold low enough to join those pieces again (0.575) also joined two men 0.60-0.62 alike and
    two women 0.66 alike. Keeping 20% of the neighbours (SPECTRAL_PVAL) leaves a voice whole, and the
    merge at 0.68 only joins what is left over (one voice of a 132 s conversation was two clusters 0.698
    alike: 0.7 kept them apart). A recording past LONG_AUDIO_SECONDS is clustered chunk by chunk."""
    clustering = model.spectral_cluster
    clustering.cluster.pval = SPECTRAL_PVAL
    clustering.mer_cos = None
    labels = np.zeros(len(embeddings), dtype=int)
    for first, last in chunks([start for start, _ in subsegments], subsegments[-1][1]):
        part = embeddings[first:last]
        found = np.asarray(clustering(part)) if len(part) > 1 else np.zeros(len(part), dtype=int)
        labels[first:last] = merge_alike(found, part, merge_threshold) + first  # labels unique across chunks
    labels = merge_alike(labels, embeddings, merge_threshold)
    labels = np.unique(labels, return_inverse=True)[1]  # 0, 1, ... as senko numbers its own
    _, merged, centroids = _senko_turns(model, embeddings, subsegments, labels)
    return [(turn["speaker"], float(turn["start"]), float(turn["end"])) for turn in merged], centroids


def chunks(starts: list[float], duration: float) -> list[tuple[int, int]]:
    """[first, last) subsegment indices of each chunk: the whole under LONG_AUDIO_SECONDS, else equal
    chunks of about CHUNK_SECONDS (their number rounded: 3,300 s is 6 chunks of 550 s)."""
    if duration < LONG_AUDIO_SECONDS:
        return [(0, len(starts))]
    count = max(1, round(duration / CHUNK_SECONDS))
    edges = [0]
    for number in range(1, count):
        edges.append(next((i for i, start in enumerate(starts) if start >= number * duration / count), len(starts)))
    edges.append(len(starts))
    return [(first, last) for first, last in itertools.pairwise(edges) if last > first]


def merge_alike(labels: np.ndarray, embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """Clusters whose centroids are at least `threshold` alike (cosine) joined, the most alike first."""
    labels = labels.copy()
    while True:
        names = np.unique(labels)
        if len(names) < 2:
            return labels
        centres = np.stack([unit(embeddings[labels == name].mean(0)) for name in names])
        similarity = np.triu(centres @ centres.T, 1) - np.tril(np.full((len(names), len(names)), 2.0))
        i, j = np.unravel_index(np.argmax(similarity), similarity.shape)
        if similarity[i, j] < threshold:
            return labels
        labels[labels == names[j]] = names[i]


def _senko_turns(model: Any, embeddings: np.ndarray, subsegments: list[tuple[float, float]], labels: np.ndarray) -> Any:
    """senko's own turn making (joins a speaker's subsegments, drops turns of 0.78 s or less) on our labels."""

    class Fixed:
        def __call__(self, _: np.ndarray) -> np.ndarray:
            return labels

    saved = model.spectral_cluster, model.umap_hdbscan_cluster
    model.spectral_cluster = model.umap_hdbscan_cluster = Fixed()
    try:
        return model._perform_clustering(embeddings, subsegments)
    finally:
        model.spectral_cluster, model.umap_hdbscan_cluster = saved


def merge_to_count(
    turns: list[tuple[str, float, float]], centroids: dict[str, np.ndarray], count: int
) -> tuple[list[tuple[str, float, float]], dict[str, np.ndarray]]:
    """Turns with the speakers merged until at most `count` are left: each time the two whose voices
    (embedding centroids, weighted by speaking time) are most alike (cosine); and the merged centroids."""
    talk = {speaker: 0.0 for speaker in centroids}
    for speaker, start, end in turns:
        talk[speaker] = talk.get(speaker, 0.0) + end - start
    voices = {speaker: np.asarray(centre, dtype=np.float64) for speaker, centre in centroids.items()}
    renamed: dict[str, str] = {}
    while len(voices) > count:
        names = list(voices)
        units = np.stack([unit(voices[name]) for name in names])
        similarity = np.triu(units @ units.T, 1) - np.tril(np.full((len(names), len(names)), 2.0))
        kept, gone = (names[i] for i in np.unravel_index(np.argmax(similarity), similarity.shape))
        weight = talk.get(kept, 0.0) + talk.get(gone, 0.0) or 1.0
        voices[kept] = (voices[kept] * talk.get(kept, 0.0) + voices.pop(gone) * talk.get(gone, 0.0)) / weight
        talk[kept] = weight
        renamed[gone] = kept
        for old, new in renamed.items():
            if new == gone:
                renamed[old] = kept
    return [(renamed.get(speaker, speaker), start, end) for speaker, start, end in turns], voices


def speaker_order(turns: list[tuple[str, float, float]]) -> dict[str, str]:
    """Each speaker's new name, S1, S2, ... by speaking time."""
    talk: dict[str, float] = {}
    for speaker, start, end in turns:
        talk[speaker] = talk.get(speaker, 0.0) + end - start
    return {speaker: f"S{rank}" for rank, speaker in enumerate(sorted(talk, key=lambda s: -talk[s]), 1)}


def numbered(turns: list[tuple[str, float, float]]) -> list[SpeakerTurn]:
    """Turns with speakers named S1, S2, ... by speaking time, and a speaker's adjacent turns joined."""
    order = speaker_order(turns)
    joined: list[SpeakerTurn] = []
    for speaker, start, end in sorted(turns, key=lambda turn: turn[1]):
        if joined and joined[-1].speaker == order[speaker]:
            joined[-1] = SpeakerTurn(order[speaker], joined[-1].start, max(joined[-1].end, end))
        else:
            joined.append(SpeakerTurn(order[speaker], start, end))
    return joined
