"""Settings of the segmenter process (read in the composition root, never at import)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SegmenterSettings(BaseSettings):
    """``REVISIT_SEGMENTER_*`` environment variables (documented in docs/segmenter.md)."""

    model_config = SettingsConfigDict(extra="ignore")

    revisit_segmenter_sweep_interval_minutes: int = Field(
        default=15,
        ge=1,
        le=1440,
        description="The safety-net sweep runs this often (clock time) besides the due timers.",
    )
    revisit_segmenter_sweep_chunk: int = Field(
        default=20_000, ge=100, le=1_000_000, description="Patients per sweep transaction."
    )
    revisit_segmenter_state_cache: int = Field(
        default=10_000,
        ge=0,
        le=1_000_000,
        description="Patient states kept in memory per process (about 12 KiB each).",
    )
    revisit_segmenter_gc_gen0: int = Field(
        default=20_000,
        ge=0,
        le=1_000_000,
        description="Python's generation-0 GC threshold for this process (0: Python's default).",
    )
    revisit_segmenter_sweep_workers: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Concurrent sweep transactions (claims never overlap: SKIP LOCKED).",
    )
    revisit_segmenter_sequencer_url: str = Field(
        default="",
        description="The sequencer's API, which plans (and words) the segment preview's "
        "messages (default: this host's sequencer port).",
    )
    revisit_segmenter_reevaluate_chunk: int = Field(
        default=500,
        ge=10,
        le=5_000,
        description="Patients re-evaluated per transaction after a parameter change.",
    )
