//! Vietnamese licence-plate grammar, OCR post-correction and multi-frame
//! voting.
//!
//! The plate stage crops the plate from the best frames of an offending
//! track, and an OCR model turns each crop into lines of text. That text is
//! noisy: `0` read as `O`, a dot read as a comma, a two-line motorbike plate
//! read as one line. This crate turns the lines into a checked [`Plate`]
//! (province code, series, number, layout), repairing the look-alike
//! characters the grammar rules out at each position, and votes the reads of
//! several frames into one so that a single bad crop does not decide whose
//! plate it is.
//!
//! It is not for running models, measuring pixels, or any I/O: it takes text
//! and numbers and returns values, which keeps it fast, deterministic and
//! testable without a model. [`classify_colour`] classifies a colour that was
//! measured elsewhere.
//!
//! Nothing read is dropped: [`parse`] and [`vote`] always return a
//! [`PlateReading`], and text the grammar rejects comes back as
//! [`PlateReading::Unreadable`] with the best guess, a confidence and the
//! reason, so the evidence still carries it for an operator.
//!
//! ```
//! use vigil_plate::{parse, vote, OcrLine, PlateReading};
//!
//! // A motorbike plate, with an `S` misread for the `5` on the bottom line.
//! let frame_1 = parse(&[OcrLine::uniform("29-B1", 0.9), OcrLine::uniform("234.S6", 0.9)]);
//! let frame_2 = parse(&[OcrLine::uniform("29-B1", 0.8), OcrLine::uniform("234.56", 0.8)]);
//! let voted = vote(&[frame_1, frame_2], 5);
//! match voted {
//!     PlateReading::Read { plate, .. } => assert_eq!(plate.canonical(), "29-B1 234.56"),
//!     PlateReading::Unreadable { reason, .. } => panic!("{reason}"),
//! }
//! ```

mod colour;
mod grammar;
mod plate;
mod province;
mod reading;
mod voting;

pub use colour::{classify_colour, PlateColour};
pub use plate::{Plate, PlateError, PlateFormat, SpecialSeries};
pub use province::{is_assigned_province, ASSIGNED_PROVINCE_CODES, CENTRAL_AGENCY_CODE};
pub use reading::{
    parse, parse_compact, parse_compact_as, OcrLine, PlateReading, Repair, REPAIR_PENALTY,
};
pub use voting::vote;
