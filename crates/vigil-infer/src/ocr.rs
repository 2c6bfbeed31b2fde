//! Text-line recognition with PP-OCR CTC recognisers.
//!
//! A line image is resized to height 48 (aspect kept), normalised to
//! [-1, 1], run through the recogniser, and decoded greedily: the most
//! probable symbol per time step, repeats collapsed, blanks (index 0)
//! removed. Each kept character carries its probability as confidence.

use std::path::Path;

use vigil_core::image::RgbImage;

use prost::Message;

use crate::ctc_head;
use crate::model::OnnxModel;
use crate::onnx_proto::ModelProto;
use crate::quantize::{self, Calibration};
use crate::resample::resize_planar;
use crate::runtime::{Runtime, SessionOptions};
use crate::InferError;

/// Height every recogniser input is scaled to.
const LINE_HEIGHT: usize = 48;
/// Widths are rounded up to this (the model downsamples width by 8).
const WIDTH_STEP: usize = 8;
const MAX_WIDTH: usize = 960;

/// A recognised text line.
#[derive(Debug, Clone, PartialEq)]
pub struct RecognisedLine {
    pub text: String,
    /// One per character of `text`.
    pub char_confidences: Vec<f32>,
}

impl RecognisedLine {
    /// Mean character confidence (0 for an empty line).
    pub fn confidence(&self) -> f32 {
        if self.char_confidences.is_empty() {
            0.0
        } else {
            self.char_confidences.iter().sum::<f32>() / self.char_confidences.len() as f32
        }
    }
}

/// The classes a recogniser keeps of its model's output head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Alphabet {
    /// Every class the model was trained with.
    Full,
    /// What a plate can show, and the common marks around it: printable
    /// ASCII (letters, digits, `-`, `.`, and the other punctuation, so a
    /// stray mark is still read as a mark, not forced onto a letter), `Đ`,
    /// the dash and dot look-alikes `vigil-plate` reads as separators, and
    /// white space. The CTC blank and the final space class are always kept.
    /// On PP-OCRv6 small this keeps 103 of 18,710 classes.
    #[default]
    Plate,
}

impl Alphabet {
    /// Whether a class with this symbol is kept.
    pub fn keeps(self, symbol: &str) -> bool {
        match self {
            Alphabet::Full => true,
            Alphabet::Plate => symbol.chars().all(|c| {
                c.is_ascii_graphic()
                    || c.is_whitespace()
                    || matches!(c, 'Đ' | 'đ' | '\u{00B7}' | '\u{2010}'..='\u{2015}')
            }),
        }
    }
}

pub struct TextRecogniser {
    model: OnnxModel,
    /// Symbol for each class index; index 0 is the CTC blank.
    symbols: Vec<String>,
    /// For each class, its index in the model file's own output head.
    source_classes: Vec<usize>,
}

impl TextRecogniser {
    /// The execution provider the recogniser really runs on.
    pub fn provider(&self) -> crate::runtime::Provider {
        self.model.provider()
    }

    /// Wraps a recogniser whose character list is in its metadata key
    /// `character` (PP-OCRv6 small) or in a dictionary file (one character
    /// per line, PP-OCRv6 tiny). Index 0 is blank, the last index a space.
    pub fn new(
        model: OnnxModel,
        metadata_chars: Option<String>,
        dict: Option<&Path>,
    ) -> Result<Self, InferError> {
        let symbols = symbol_list(&character_text(metadata_chars, dict, model.name())?);
        Ok(Self::with_symbols(model, symbols))
    }

    /// Opens the recogniser at `path` keeping only the classes of
    /// `alphabet`: the model's output head is cut down in memory (see
    /// [`crate::ctc_head`]) before the session is made, which saves most of
    /// the head's time. The character list comes from the model's metadata
    /// key `character` or from `dict`, as in [`TextRecogniser::new`].
    pub fn open(
        runtime: &Runtime,
        name: &str,
        path: &Path,
        dict: Option<&Path>,
        options: SessionOptions,
        alphabet: Alphabet,
    ) -> Result<Self, InferError> {
        Self::open_edited(runtime, name, path, dict, options, alphabet, None)
    }

    /// [`TextRecogniser::open`] with the convolutions quantised to INT8
    /// using `calibration` (see [`crate::quantize`]): about twice as fast on
    /// a CPU. A table that does not fit the model is an error.
    pub fn open_int8(
        runtime: &Runtime,
        name: &str,
        path: &Path,
        dict: Option<&Path>,
        options: SessionOptions,
        alphabet: Alphabet,
        calibration: &Calibration,
    ) -> Result<Self, InferError> {
        Self::open_edited(
            runtime,
            name,
            path,
            dict,
            options,
            alphabet,
            Some(calibration),
        )
    }

    fn open_edited(
        runtime: &Runtime,
        name: &str,
        path: &Path,
        dict: Option<&Path>,
        options: SessionOptions,
        alphabet: Alphabet,
        calibration: Option<&Calibration>,
    ) -> Result<Self, InferError> {
        let (mut proto, symbols, keep) = load_pruned(name, path, dict, alphabet)?;
        if let Some(calibration) = calibration {
            quantize::to_int8(&mut proto, calibration, name)?;
        }
        let edited = proto.encode_to_vec();
        drop(proto);
        let model = OnnxModel::from_memory(runtime, name, path, &edited, options)?;
        Ok(Self {
            model,
            symbols: keep.iter().map(|&i| symbols[i].clone()).collect(),
            source_classes: keep,
        })
    }

    fn with_symbols(model: OnnxModel, symbols: Vec<String>) -> Self {
        Self {
            model,
            source_classes: (0..symbols.len()).collect(),
            symbols,
        }
    }

    /// The symbol of each output class; index 0 is the CTC blank.
    pub fn symbols(&self) -> &[String] {
        &self.symbols
    }

    /// For each output class, its index in the model file's own head (the
    /// identity unless the head was pruned).
    pub fn source_classes(&self) -> &[usize] {
        &self.source_classes
    }

    /// Reads the character list from the model's metadata, if present.
    pub fn metadata_characters(model: &OnnxModel) -> Option<String> {
        model.session.metadata().ok()?.custom("character")
    }

    pub fn model(&self) -> &OnnxModel {
        &self.model
    }

    /// Recognises several line images in one run (padded to the widest).
    pub fn recognise(&mut self, lines: &[&RgbImage]) -> Result<Vec<RecognisedLine>, InferError> {
        let n = lines.len();
        let symbols = self.symbols.clone();
        self.run(lines, |steps, classes, data| {
            (0..n)
                .map(|i| {
                    ctc_greedy(
                        &data[i * steps * classes..(i + 1) * steps * classes],
                        classes,
                        &symbols,
                    )
                })
                .collect()
        })
    }

    /// The class probabilities of each line, `steps x classes` row-major
    /// (classes in [`TextRecogniser::symbols`] order), for the same batched
    /// run as [`TextRecogniser::recognise`].
    pub fn probabilities(&mut self, lines: &[&RgbImage]) -> Result<Vec<Vec<f32>>, InferError> {
        let n = lines.len();
        self.run(lines, |steps, classes, data| {
            let len = steps * classes;
            (0..n)
                .map(|i| data[i * len..(i + 1) * len].to_vec())
                .collect()
        })
    }

    /// Runs the lines as one batch (padded to the widest) and hands
    /// `(steps, classes, probabilities)` to `read`.
    fn run<R: Default>(
        &mut self,
        lines: &[&RgbImage],
        read: impl FnOnce(usize, usize, &[f32]) -> R,
    ) -> Result<R, InferError> {
        if lines.is_empty() {
            return Ok(R::default());
        }
        let (shape, input) = line_batch(lines);
        let classes_expected = self.symbols.len();
        let name = self.model.name().to_owned();
        let n = lines.len();
        self.model.run_f32(&shape, &input, |outputs| {
            let (out_shape, data) = outputs.first().ok_or_else(|| InferError::Run {
                model: name.clone(),
                message: "no output".into(),
            })?;
            let (steps, classes) = match out_shape.as_slice() {
                [b, t, c]
                    if *b as usize == n
                        && *c as usize == classes_expected
                        && data.len() == n * (*t as usize) * classes_expected =>
                {
                    (*t as usize, *c as usize)
                }
                other => {
                    return Err(InferError::Shape {
                        model: name.clone(),
                        message: format!(
                            "output {other:?} does not match [{n}, T, {classes_expected}] for its {} characters",
                            classes_expected.saturating_sub(2)
                        ),
                    })
                }
            };
            Ok(read(steps, classes, data))
        })
    }
}

/// Reads a recogniser, finds its character list and cuts its head to
/// `alphabet`: the edited model, the full symbol list, and the kept classes.
fn load_pruned(
    name: &str,
    path: &Path,
    dict: Option<&Path>,
    alphabet: Alphabet,
) -> Result<(ModelProto, Vec<String>, Vec<usize>), InferError> {
    let bytes = crate::model::read_model_file(path)?;
    let mut proto = ctc_head::decode(&bytes, name)?;
    drop(bytes);
    let metadata = ctc_head::metadata(&proto, "character").map(str::to_owned);
    let symbols = symbol_list(&character_text(metadata, dict, name)?);
    let classes = ctc_head::head_classes(&proto, name)?;
    if classes != symbols.len() {
        return Err(InferError::Shape {
            model: name.to_owned(),
            message: format!(
                "the output head has {classes} classes but the character list gives {}",
                symbols.len()
            ),
        });
    }
    let last = symbols.len() - 1;
    let keep: Vec<usize> = (0..symbols.len())
        .filter(|&i| i == 0 || i == last || alphabet.keeps(&symbols[i]))
        .collect();
    if keep.len() < symbols.len() {
        ctc_head::prune_head(&mut proto, name, &keep)?;
    }
    Ok((proto, symbols, keep))
}

/// Measures the value ranges INT8 quantisation needs (see
/// [`crate::quantize`]) by running the folded float recogniser on real line
/// images, each as its own batch as the reader runs it.
pub struct RecogniserCalibrator {
    calibrator: quantize::Calibrator,
}

impl RecogniserCalibrator {
    /// Opens the recogniser as [`TextRecogniser::open_int8`] will edit it,
    /// with every tensor to calibrate exposed as an output.
    pub fn open(
        runtime: &Runtime,
        name: &str,
        path: &Path,
        dict: Option<&Path>,
        options: SessionOptions,
        alphabet: Alphabet,
    ) -> Result<Self, InferError> {
        let (proto, _, _) = load_pruned(name, path, dict, alphabet)?;
        Ok(Self {
            calibrator: quantize::Calibrator::open(runtime, name, path, proto, options)?,
        })
    }

    /// Runs one line image and records its ranges.
    pub fn add(&mut self, line: &RgbImage) -> Result<(), InferError> {
        let (shape, input) = line_batch(&[line]);
        self.calibrator.add(&shape, &input)
    }

    /// How many line images were measured.
    pub fn lines(&self) -> usize {
        self.calibrator.runs()
    }

    /// The calibration table, for the model file with this SHA-256.
    pub fn finish(&self, model_sha256: &str, source: &str) -> Calibration {
        self.calibrator.finish(model_sha256, source)
    }
}

/// Lines as one input batch `[n, 3, 48, W]`, padded to the widest.
fn line_batch(lines: &[&RgbImage]) -> ([usize; 4], Vec<f32>) {
    let widths: Vec<usize> = lines.iter().map(|l| target_width(l)).collect();
    let batch_w = widths.iter().copied().max().unwrap_or(WIDTH_STEP);
    let plane = LINE_HEIGHT * batch_w;
    // Padding is 0.0, i.e. mid-grey after normalisation, as PaddleOCR pads.
    let mut input = vec![0.0f32; lines.len() * 3 * plane];
    for ((line, &w), chunk) in lines.iter().zip(&widths).zip(input.chunks_mut(3 * plane)) {
        resize_normalise(line, w, batch_w, chunk);
    }
    ([lines.len(), 3, LINE_HEIGHT, batch_w], input)
}

/// The character list from the model's metadata, or else from `dict`.
fn character_text(
    metadata: Option<String>,
    dict: Option<&Path>,
    model: &str,
) -> Result<String, InferError> {
    match (metadata, dict) {
        (Some(t), _) => Ok(t),
        (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| InferError::Load {
            model: path.to_owned(),
            message: format!("cannot read the character list: {e}"),
        }),
        (None, None) => Err(InferError::Shape {
            model: model.to_owned(),
            message: "no character list: neither metadata `character` nor a dictionary file".into(),
        }),
    }
}

/// Class symbols from a character list (one per line): the CTC blank
/// first, then the characters, then a space as the last class.
fn symbol_list(text: &str) -> Vec<String> {
    let mut symbols = vec![String::new()];
    symbols.extend(text.lines().map(str::to_owned));
    while symbols.last().is_some_and(String::is_empty) && symbols.len() > 1 {
        symbols.pop();
    }
    symbols.push(" ".into());
    symbols
}

/// Width after scaling to `LINE_HEIGHT`, rounded up to the model's stride.
fn target_width(line: &RgbImage) -> usize {
    let h = line.height.max(1) as f32;
    let w = (line.width as f32 * LINE_HEIGHT as f32 / h).ceil() as usize;
    w.div_ceil(WIDTH_STEP)
        .max(1)
        .saturating_mul(WIDTH_STEP)
        .clamp(WIDTH_STEP, MAX_WIDTH)
}

/// Bilinear resize to `LINE_HEIGHT x w`, normalised to [-1, 1], written
/// planar into a `3 x LINE_HEIGHT x stride` buffer.
fn resize_normalise(line: &RgbImage, w: usize, stride: usize, out: &mut [f32]) {
    resize_planar(line, w, LINE_HEIGHT, stride, out, |_, v| v / 127.5 - 1.0);
}

/// Greedy CTC decoding of one `[steps, classes]` probability matrix.
pub fn ctc_greedy(probs: &[f32], classes: usize, symbols: &[String]) -> RecognisedLine {
    let mut text = String::new();
    let mut confs = Vec::new();
    let mut previous = 0usize;
    for step in probs.chunks_exact(classes) {
        let (best, p) =
            step.iter()
                .enumerate()
                .fold((0usize, f32::NEG_INFINITY), |acc, (i, &v)| {
                    if v > acc.1 {
                        (i, v)
                    } else {
                        acc
                    }
                });
        if best != 0 && best != previous {
            if let Some(sym) = symbols.get(best) {
                for ch in sym.chars() {
                    text.push(ch);
                    confs.push(p);
                }
            }
        }
        previous = best;
    }
    RecognisedLine {
        text,
        char_confidences: confs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syms() -> Vec<String> {
        ["", "A", "B", "1", " "]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }

    fn step(best: usize, p: f32) -> Vec<f32> {
        let mut v = vec![(1.0 - p) / 4.0; 5];
        v[best] = p;
        v
    }

    #[test]
    fn ctc_collapses_repeats_and_drops_blanks() {
        let probs: Vec<f32> = [
            (1, 0.9),
            (1, 0.8),
            (0, 0.9),
            (1, 0.7),
            (3, 0.6),
            (3, 0.9),
            (0, 0.99),
            (2, 0.5),
        ]
        .iter()
        .flat_map(|&(b, p)| step(b, p))
        .collect();
        let line = ctc_greedy(&probs, 5, &syms());
        assert_eq!(line.text, "AA1B");
        assert_eq!(line.char_confidences, vec![0.9, 0.7, 0.6, 0.5]);
    }

    #[test]
    fn the_plate_alphabet_keeps_plate_characters_and_marks() {
        for kept in [
            "A", "z", "0", "9", "-", ".", ":", " ", "Đ", "đ", "·", "\u{2013}", "\u{3000}",
        ] {
            assert!(Alphabet::Plate.keeps(kept), "{kept:?}");
        }
        for dropped in ["中", "あ", "é", "Ö", "₫", "A中"] {
            assert!(!Alphabet::Plate.keeps(dropped), "{dropped:?}");
            assert!(Alphabet::Full.keeps(dropped), "{dropped:?}");
        }
    }

    #[test]
    fn the_symbol_list_is_blank_characters_space() {
        assert_eq!(symbol_list("a\nb\n\n"), vec!["", "a", "b", " "]);
    }

    #[test]
    fn widths_follow_the_aspect_ratio_in_steps_of_eight() {
        let plate = RgbImage::from_raw(94, 24, vec![0; 94 * 24 * 3]).expect("image");
        assert_eq!(target_width(&plate), 192);
        let tiny = RgbImage::from_raw(1, 100, vec![0; 300]).expect("image");
        assert_eq!(target_width(&tiny), 8);
    }
}
