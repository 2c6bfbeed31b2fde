//! Opening the models a command needs, each verified against the manifest first.

use std::path::PathBuf;

use anyhow::Context;
use vigil_core::config::ExecutionProvider;
use vigil_infer::model::{DetectorShape, OnnxModel};
use vigil_infer::ocr::{Alphabet, TextRecogniser};
use vigil_infer::plate_reader::{FirstPass, PlateLayout, PlateReader, PlateReaderConfig};
use vigil_infer::quantize::Calibration;
use vigil_infer::runtime::{Runtime, SessionOptions};
use vigil_infer::text_detector::{TextDetector, TextDetectorConfig};
use vigil_infer::{store, Manifest};

use crate::paths::ModelPaths;

pub struct Models {
    pub manifest: Manifest,
    pub paths: ModelPaths,
    pub runtime: &'static Runtime,
}

impl Models {
    /// Loads the manifest and ONNX Runtime; a missing or corrupt runtime
    /// library stops here with the repair command.
    pub fn load(paths: &ModelPaths) -> anyhow::Result<Self> {
        Self::load_for(paths, ExecutionProvider::Cpu)
    }

    /// Like [`Models::load`], for sessions on `provider`: a GPU provider
    /// loads the GPU build of ONNX Runtime (`[gpu_runtime]`, fetched with
    /// `vigil models fetch --gpu`). Without it, the CPU library is loaded
    /// and the sessions fall back to CPU, with a warning saying why.
    pub fn load_for(paths: &ModelPaths, provider: ExecutionProvider) -> anyhow::Result<Self> {
        let manifest = Manifest::load(&paths.manifest)?;
        let dir = paths.models_dir();
        let gpu_library = match provider {
            ExecutionProvider::Cpu => None,
            _ => match store::require_gpu(&manifest, &dir) {
                Ok(Some(library)) => Some(library),
                Ok(None) => {
                    tracing::warn!(
                        "{provider:?} requested but {} has no [gpu_runtime]; running on CPU",
                        paths.manifest.display()
                    );
                    None
                }
                Err(e) => {
                    tracing::warn!(
                        "{provider:?} requested but the GPU build of ONNX Runtime is not usable ({e}); \
                         running on CPU. Fetch it with `vigil models fetch --gpu`"
                    );
                    None
                }
            },
        };
        let runtime = match gpu_library {
            Some(library) => {
                if let Some(gpu) = &manifest.gpu_runtime {
                    tracing::info!(library = %library.display(), needs = %gpu.requires, "ONNX Runtime GPU build");
                }
                Runtime::load(&library)?
            }
            None => {
                store::require(&manifest, &dir, &[manifest.runtime.name.as_str()])?;
                Runtime::load(&dir.join(&manifest.runtime.file))?
            }
        };
        Ok(Self {
            manifest,
            paths: paths.clone(),
            runtime,
        })
    }

    /// Opens a model by manifest name after checking its SHA-256.
    pub fn open(&self, name: &str, options: SessionOptions) -> anyhow::Result<OnnxModel> {
        let path = self.verified_file(name)?;
        Ok(OnnxModel::open(self.runtime, name, &path, options)?)
    }

    /// A manifest model's SHA-256 (the key of its shipped calibration
    /// tables).
    pub fn sha256(&self, name: &str) -> anyhow::Result<&str> {
        self.manifest
            .model(name)
            .map(|m| m.sha256.as_str())
            .with_context(|| format!("no model {name:?} in {}", self.paths.manifest.display()))
    }

    /// The file of a manifest model, its SHA-256 checked.
    pub fn verified_file(&self, name: &str) -> anyhow::Result<PathBuf> {
        let entry = self
            .manifest
            .model(name)
            .with_context(|| format!("no model {name:?} in {}", self.paths.manifest.display()))?;
        let dir = self.paths.models_dir();
        store::require(&self.manifest, &dir, &[name])?;
        Ok(dir.join(&entry.file))
    }

    /// A detector model changed in memory as `shape` asks (a dynamic batch
    /// for runs of several images, a rectangular input). An edit the model
    /// cannot take is dropped with a warning; the shape returned is the one
    /// the model really has.
    pub fn open_detector_model(
        &self,
        name: &str,
        options: SessionOptions,
        mut shape: DetectorShape,
    ) -> anyhow::Result<(OnnxModel, DetectorShape)> {
        let path = self.verified_file(name)?;
        loop {
            match OnnxModel::open_detector(self.runtime, name, &path, options, shape) {
                Ok(model) => return Ok((model, shape)),
                Err(e @ vigil_infer::InferError::Batch { .. }) if shape.dynamic_batch => {
                    tracing::warn!(
                        model = name,
                        "{e}; every image runs on its own (set [detector] max_batch = 1 to silence this)"
                    );
                    shape.dynamic_batch = false;
                }
                Err(e @ vigil_infer::InferError::InputSize { .. }) if shape.input.is_some() => {
                    tracing::warn!(
                        model = name,
                        "{e}; the square input is kept (set [detector] fit_input = false to silence this)"
                    );
                    shape.input = None;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A text recogniser with its character list (metadata or dictionary
    /// file), its output head cut down to `alphabet` (see
    /// [`vigil_infer::ctc_head`]); INT8 with `calibration`.
    fn open_recogniser(
        &self,
        name: &str,
        options: SessionOptions,
        alphabet: Alphabet,
        calibration: Option<&Calibration>,
    ) -> anyhow::Result<TextRecogniser> {
        let (path, dict) = self.recogniser_files(name)?;
        Ok(match calibration {
            None => TextRecogniser::open(
                self.runtime,
                name,
                &path,
                dict.as_deref(),
                options,
                alphabet,
            )?,
            Some(c) => TextRecogniser::open_int8(
                self.runtime,
                name,
                &path,
                dict.as_deref(),
                options,
                alphabet,
                c,
            )?,
        })
    }

    /// A first-pass recogniser for [`PlateReader::with_first_pass`]: in
    /// float, its head cut to `alphabet`. Its readings stand when every
    /// letter and digit has at least `min_char_confidence`.
    pub fn first_pass(
        &self,
        name: &str,
        options: SessionOptions,
        alphabet: Alphabet,
        min_char_confidence: f32,
    ) -> anyhow::Result<FirstPass> {
        let recogniser = self.open_recogniser(name, options, alphabet, None)?;
        Ok(FirstPass::new(recogniser, min_char_confidence))
    }

    /// The verified model file and character list of a recogniser.
    pub fn recogniser_files(&self, name: &str) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
        let entry = self
            .manifest
            .model(name)
            .with_context(|| format!("no model {name:?} in {}", self.paths.manifest.display()))?;
        let dir = self.paths.models_dir();
        store::require(&self.manifest, &dir, &[name])?;
        let dict = entry.charset.as_ref().map(|c| dir.join(&c.file));
        Ok((dir.join(&entry.file), dict))
    }

    /// The text detector that locates plates in vehicle crops. With `int8`
    /// and a shipped calibration table for this model file
    /// ([`vigil_infer::quantize::builtin_text_detector`]), its convolutions
    /// run in INT8; without a table it runs in float, with a warning.
    pub fn text_detector(
        &self,
        name: &str,
        options: SessionOptions,
        int8: bool,
    ) -> anyhow::Result<TextDetector> {
        let path = self.verified_file(name)?;
        let sha256 = self.sha256(name)?;
        let table = int8
            .then(|| vigil_infer::quantize::builtin_text_detector(sha256))
            .flatten();
        let model = match &table {
            Some(t) => OnnxModel::open_int8(self.runtime, name, &path, options, t)?,
            None => {
                if int8 {
                    // Not a fault: the tiny detector runs faster in float.
                    tracing::info!(
                        model = name,
                        "no INT8 calibration table for this text detector file; it runs in float"
                    );
                }
                OnnxModel::open(self.runtime, name, &path, options)?
            }
        };
        Ok(TextDetector::new(model, TextDetectorConfig::default()))
    }

    /// The plate reader for a recogniser, its head cut to `alphabet`. With
    /// `int8`, each layout whose lines have a shipped calibration table for
    /// this model file ([`vigil_infer::quantize::builtin`]) is read by an
    /// INT8 copy calibrated on such lines; a layout without a table is read
    /// in float, with a warning.
    pub fn plate_reader(
        &self,
        name: &str,
        options: SessionOptions,
        alphabet: Alphabet,
        int8: bool,
    ) -> anyhow::Result<PlateReader> {
        let sha256 = self.sha256(name)?;
        let table = |layout| {
            let table = int8
                .then(|| vigil_infer::quantize::builtin(sha256, layout))
                .flatten();
            if int8 && table.is_none() {
                tracing::warn!(
                    model = name,
                    ?layout,
                    "no INT8 calibration table for this model file; these plates are read in float"
                );
            }
            table
        };
        let (one_line, two_line) = (table(PlateLayout::OneLine), table(PlateLayout::TwoLine));
        let main = self.open_recogniser(name, options, alphabet, two_line.as_ref())?;
        let reader = PlateReader::new(main, PlateReaderConfig::default());
        Ok(match one_line {
            Some(t) => reader.with_one_line_recogniser(self.open_recogniser(
                name,
                options,
                alphabet,
                Some(&t),
            )?),
            None => reader,
        })
    }
}

/// Decodes a PNG or JPEG into Vigil's image type.
pub fn load_image(path: &std::path::Path) -> anyhow::Result<vigil_core::image::RgbImage> {
    let img = image::open(path)
        .with_context(|| format!("cannot decode image {}", path.display()))?
        .to_rgb8();
    let (w, h) = img.dimensions();
    vigil_core::image::RgbImage::from_raw(w, h, img.into_raw()).context("image buffer size")
}

/// `--provider` values: cpu, cuda, tensorrt.
pub fn parse_provider(text: &str) -> Result<ExecutionProvider, String> {
    match text {
        "cpu" => Ok(ExecutionProvider::Cpu),
        "cuda" => Ok(ExecutionProvider::Cuda),
        "tensorrt" => Ok(ExecutionProvider::Tensorrt),
        other => Err(format!(
            "unknown provider {other:?}; use cpu, cuda or tensorrt"
        )),
    }
}

/// The execution provider a site config asks for (`[detector]
/// execution_provider`), read before the config is checked against the
/// models, so that the matching ONNX Runtime build is loaded first.
/// Anything unreadable counts as CPU; the full check reports it later.
pub fn site_provider(config: &std::path::Path) -> ExecutionProvider {
    std::fs::read_to_string(config)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|t| {
            t.get("detector")?
                .get("execution_provider")?
                .as_str()
                .and_then(|p| parse_provider(p).ok())
        })
        .unwrap_or_default()
}
