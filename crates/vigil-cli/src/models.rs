//! Opening the models a command needs, each verified against the manifest first.

use std::path::PathBuf;

use anyhow::Context;
use vigil_infer::model::OnnxModel;
use vigil_infer::ocr::{Alphabet, TextRecogniser};
use vigil_infer::plate_reader::{PlateLayout, PlateReader, PlateReaderConfig};
use vigil_infer::quantize::Calibration;
use vigil_infer::runtime::{Runtime, SessionOptions};
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
        let manifest = Manifest::load(&paths.manifest)?;
        let dir = paths.models_dir();
        store::require(&manifest, &dir, &[manifest.runtime.name.as_str()])?;
        let runtime = Runtime::load(&dir.join(&manifest.runtime.file))?;
        Ok(Self {
            manifest,
            paths: paths.clone(),
            runtime,
        })
    }

    /// Opens a model by manifest name after checking its SHA-256.
    pub fn open(&self, name: &str, options: SessionOptions) -> anyhow::Result<OnnxModel> {
        let entry = self
            .manifest
            .model(name)
            .with_context(|| format!("no model {name:?} in {}", self.paths.manifest.display()))?;
        let dir = self.paths.models_dir();
        store::require(&self.manifest, &dir, &[name])?;
        Ok(OnnxModel::open(
            self.runtime,
            name,
            &dir.join(&entry.file),
            options,
        )?)
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
        let sha256 = &self
            .manifest
            .model(name)
            .context("recogniser entry")?
            .sha256;
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
