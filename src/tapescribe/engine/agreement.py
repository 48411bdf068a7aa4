"""Which words of a live hypothesis are settled: LocalAgreement, and the clean-ups a hypothesis needs first.

Words carry absolute times (seconds from the start of the stream). Nothing here runs a model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Word:
    """One word with absolute times (seconds from the start of the stream)."""

    start: float
    end: float
    text: str  # as Whisper writes it, with its leading space
    probability: float = 1.0
    starts_segment: bool = False  # first word of a Whisper segment: where a transcript segment may begin

    @property
    def key(self) -> str:
        """What two hypotheses must agree on: the word without case or punctuation."""
        return _KEY.sub("", self.text.lower())

    def as_record(self) -> dict[str, Any]:
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "word": self.text,
            "probability": round(self.probability, 4),
        }


_KEY = re.compile(r"[^\w']+")


def ending_by(word: Word, limit: float) -> Word:
    """A word that ends by `limit` (Whisper stretches the last word of speech into the silence after it)."""
    return word if word.end <= limit else replace(word, end=max(word.start, limit))


SENTENCE_END = (".", "!", "?")
HALLUCINATION_PROBABILITY = 0.15
HALLUCINATION_TAIL_WORDS = 4


def without_trailing_hallucination(words: list[Word]) -> list[Word]:
    """Drop what Whisper adds after the last sentence of an utterance ("Thank you.", "So, let's see.").

    Such a tail begins a new sentence at the very end of the audio with a word the model itself
    barely believes (probability under 0.15; real speech there scores far higher).
    """
    for number in range(max(1, len(words) - HALLUCINATION_TAIL_WORDS), len(words)):
        if words[number - 1].text.rstrip().endswith(SENTENCE_END) and (
            words[number].probability < HALLUCINATION_PROBABILITY
        ):
            return words[:number]
    return words


LOOP_PHRASE_WORDS = range(2, 9)  # a phrase of 2 to 8 words said again at once: a decoding loop
LOOP_REPEATS = {2: 3}  # ...a two-word phrase only when said three times ("thank you, thank you" is speech)
STACKED_WORDS = 3  # this many words in a row with no duration: text with no audio under it


def without_loops(words: list[Word]) -> list[Word]:
    """Cut a hypothesis where Whisper starts looping.

    Two signs, both seen with tiny.en at the end of a buffer: a phrase repeated back to back ("We're
    just saying some words. We're just saying some words."), and words stacked on one instant (no
    audio under them). A single word said again ("words words words") is speech and is kept.
    """
    keys = [word.key for word in words]
    for start in range(len(words)):
        for size in LOOP_PHRASE_WORDS:
            repeats = LOOP_REPEATS.get(size, 2)
            phrase = keys[start : start + size]
            if start + repeats * size <= len(words) and all(
                keys[start + n * size : start + (n + 1) * size] == phrase for n in range(1, repeats)
            ):
                return words[: start + size]
        run = words[start : start + STACKED_WORDS]
        if len(run) == STACKED_WORDS and all(word.end - word.start < 0.02 for word in run):
            return words[:start]
    return words


def words_text(words: list[Word]) -> str:
    return "".join(word.text for word in words)


class LocalAgreement:
    """LocalAgreement over hypotheses with absolute word times.

    `settle(hypothesis, audio_end)` settles the longest common prefix of this hypothesis and every
    earlier one made over the last `span` seconds of audio (after the words already settled). With
    `span` 0 this is LocalAgreement-2 (the previous hypothesis only). Steps come every few tenths of
    a second on a fast machine, and two hypotheses that far apart agree on early guesses ("How do
    you marry" for "Had he married a more amiable woman"); a word that survives a second more of
    audio has been heard in context. `settle_all` trusts one hypothesis completely, for audio known
    to be complete (an utterance followed by silence, or the end of the stream).
    """

    OVERLAP_WORDS = 5
    SETTLED_KEPT = 400  # more than one 30 s buffer can hold
    TIME_SLACK = 0.1

    def __init__(self, span: float = 0.0, patience: float = 2.0, min_heard: float = 0.0) -> None:
        self.span = span
        self.patience = patience
        self.min_heard = min_heard  # no agreement over a buffer shorter than this: Whisper guesses there
        self.settled_end = 0.0
        self.settled_start = -1.0  # start of the last settled word
        self.sent_start = 0.0  # start of the last settled word as it was returned (_in_order)
        self.recent: list[Word] = []  # the last settled words, to recognise them at a hypothesis's start
        self.settled: list[Word] = []  # settled words (the last SETTLED_KEPT), to cut them off by count
        self.total = 0  # words settled so far
        # (audio end, unsettled words, words settled then) of recent hypotheses
        self.history: list[tuple[float, list[Word], int]] = []

    @property
    def pending(self) -> list[Word]:
        """The latest hypothesis, after the settled words."""
        return self.since(*self.history[-1][1:]) if self.history else []

    def fresh(self, hypothesis: list[Word], buffer_start: float | None) -> list[Word]:
        """The unsettled part of a hypothesis over the whole buffer starting at `buffer_start`.

        Such a hypothesis begins with the settled words inside the buffer, heard again. When their
        text matches they are cut off by count: word times move by tenths of a second between
        hypotheses, most of all in repetitions ("words, words, words"), where cutting by time loses
        or doubles words. Otherwise (Whisper wrote them differently this time) by time.
        """
        if buffer_start is not None:
            inside = [word for word in self.settled if word.start >= buffer_start - self.TIME_SLACK]
            if len(inside) < len(self.settled) or self.total == len(self.settled):  # all of them are known
                count = len(inside)
                if count and [word.key for word in hypothesis[:count]] == [word.key for word in inside]:
                    return hypothesis[count:]
        return self.unsettled(hypothesis)

    def since(self, words: list[Word], settled_then: int) -> list[Word]:
        """An earlier hypothesis's unsettled words, without those settled since (by count when they match)."""
        count = self.total - settled_then
        if count == 0:
            return words
        if 0 < count <= len(self.settled) and [w.key for w in words[:count]] == [w.key for w in self.settled[-count:]]:
            return words[count:]
        return self.unsettled(words)

    def unsettled(self, hypothesis: list[Word]) -> list[Word]:
        """The part of a hypothesis after what is already settled, judged by time."""
        # Whisper stretches a word before a pause or the buffer's edge over the silence after it, so
        # the last settled word's end may lie past the next word's start: its start counts too. Words
        # heard again that pass this are recognised below by their text.
        after = min(self.settled_end - self.TIME_SLACK, self.settled_start + 0.01)
        new = [word for word in hypothesis if word.start > after]
        if new and self.recent and new[0].start - self.settled_start < 1.0:
            for count in range(min(self.OVERLAP_WORDS, len(self.recent), len(new)), 0, -1):
                settled = self.recent[-count:]
                # The same words heard again start where the settled ones were; a real repetition
                # ("words words") starts after them.
                if [w.key for w in settled] == [w.key for w in new[:count]] and new[0].start < settled[
                    -1
                ].end + self.TIME_SLACK:
                    new = new[count:]
                    break
        return new

    def settle(
        self,
        hypothesis: list[Word],
        audio_end: float,
        complete_before: float | None = None,
        buffer_start: float | None = None,
    ) -> list[Word]:
        """Settle what the recent hypotheses agree on, plus every word starting before
        `complete_before` (audio known to be complete). Returns the newly settled words."""
        new = self.fresh(hypothesis, buffer_start)
        sure = 0
        if complete_before is not None:
            while sure < len(new) and new[sure].start < complete_before:
                sure += 1
        # The hypotheses to agree with: all made since the newest one at least `span` older.
        oldest = max((n for n, (end, _, _) in enumerate(self.history) if end <= audio_end - self.span), default=None)
        agreed = sure
        too_short = buffer_start is not None and audio_end - buffer_start < self.min_heard
        if oldest is not None and not too_short:
            agreed = len(new)
            for _, earlier, settled_then in self.history[oldest:]:
                earlier = self.since(earlier, settled_then)
                if complete_before is not None:
                    earlier = [word for word in earlier if word.start >= complete_before - self.TIME_SLACK]
                common = 0
                for mine, theirs in zip(new[sure:agreed], earlier, strict=False):
                    if mine.key != theirs.key:
                        break
                    common += 1
                agreed = sure + common
            # Words this far behind the audio have been heard in context: two hypotheses in a row
            # (LocalAgreement-2) are enough, so one flickering newer hypothesis cannot hold them back.
            if self.history and agreed < len(new):
                previous = self.since(self.history[-1][1], self.history[-1][2])
                if complete_before is not None:
                    previous = [word for word in previous if word.start >= complete_before - self.TIME_SLACK]
                common = agreed
                while (
                    common < len(new)
                    and common - sure < len(previous)
                    and new[common].end <= audio_end - self.patience
                    and new[common].key == previous[common - sure].key
                ):
                    common += 1
                agreed = common
        settled = self._commit(new[:agreed])
        self.history = [entry for entry in self.history[oldest or 0 :]] + [(audio_end, new[agreed:], self.total)]
        return settled

    def settle_all(self, hypothesis: list[Word] | None = None, buffer_start: float | None = None) -> list[Word]:
        """Settle a whole hypothesis (or, with none, what the last one left pending)."""
        new = self.fresh(hypothesis, buffer_start) if hypothesis is not None else self.pending
        self.history = []
        return self._commit(new)

    def settle_pending_until(self, limit: float) -> list[Word]:
        """Settle the pending words that end by `limit` (making room when agreement is too slow)."""
        pending = self.pending
        count = 0
        while count < len(pending) and pending[count].end <= limit:
            count += 1
        settled = self._commit(pending[:count])
        if self.history:
            self.history[-1] = (self.history[-1][0], pending[count:], self.total)
        return settled

    def _commit(self, words: list[Word]) -> list[Word]:
        """Settle `words`; returns them as they are sent (`_in_order`). What is kept for recognising them in
        later hypotheses keeps Whisper's own times."""
        if not words:
            return []
        self.settled_end = max(self.settled_end, words[-1].end)
        self.settled_start = max(self.settled_start, words[-1].start)
        self.recent = (self.recent + words)[-self.OVERLAP_WORDS :]
        self.settled = (self.settled + words)[-self.SETTLED_KEPT :]
        self.total += len(words)
        return self._in_order(words)

    def _in_order(self, words: list[Word]) -> list[Word]:
        """Newly settled words as they are sent, none starting before the one sent before it: a
        hypothesis's times move by tenths of a second, so a word recognised by count may start a little
        before the last settled one (21.85 s after 21.9 s), and captions must keep the audio's order."""
        ordered: list[Word] = []
        for word in words:
            if word.start < self.sent_start:
                word = replace(word, start=self.sent_start, end=max(word.end, self.sent_start))
            ordered.append(word)
            self.sent_start = word.start
        return ordered
