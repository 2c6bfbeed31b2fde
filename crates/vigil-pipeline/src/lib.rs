//! The running chain: ingest -> detect -> track -> signal and rules ->
//! event records, for every camera of a site.
//!
//! [`analysis::CameraAnalysis`] is the pure part (detections in, events
//! out) that `vigil eval violations` and the tests share; [`run`] wires it
//! to real cameras, the detector, the live signal sources and the record
//! sinks.

pub mod analysis;
pub mod event;
pub mod evidence;
pub mod metrics;
pub mod plates;
pub mod rate;
pub mod run;

pub use analysis::{CameraAnalysis, FrameAnalysis, PathPoint, Sighting};
pub use event::{PlateRead, SummaryRecord, ViolationEvent};
pub use evidence::{EvidenceStage, PackagingContext};
pub use metrics::Metrics;
pub use plates::{BestCrops, PlateStage};
pub use rate::DetectionRate;
pub use run::{JsonlSink, PipelineError, RecordSink, RunOptions, RunReport, SiteRun};
