//! Opening the models a command needs, each verified against the manifest first.

use std::path::PathBuf;

use anyhow::Context;
use vigil_infer::model::OnnxModel;
use vigil_infer::ocr::{Alphabet, TextRecogniser};
use vigil_infer::plate_reader::{PlateReader, PlateReaderConfig};
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
    pub fn recogniser(
        &self,
        name: &str,
        options: SessionOptions,
        alphabet: Alphabet,
    ) -> anyhow::Result<TextRecogniser> {
        self.open_recogniser(name, options, alphabet, None)
    }

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

    /// The plate reader for a recogniser: its head cut to `alphabet`, and,
    /// with `int8` and a built-in calibration table for this model file
    /// ([`vigil_infer::quantize::builtin`]), an INT8 copy that reads the
    /// one-line plates. Without a table it reads everything in float and
    /// says so.
    pub fn plate_reader(
        &self,
        name: &str,
        options: SessionOptions,
        alphabet: Alphabet,
        int8: bool,
    ) -> anyhow::Result<PlateReader> {
        let reader = PlateReader::new(
            self.recogniser(name, options, alphabet)?,
            PlateReaderConfig::default(),
        );
        if !int8 {
            return Ok(reader);
        }
        let entry = self.manifest.model(name).context("recogniser entry")?;
        match vigil_infer::quantize::builtin(&entry.sha256) {
            Some(calibration) => Ok(reader.with_one_line_recogniser(self.open_recogniser(
                name,
                options,
                alphabet,
                Some(&calibration),
            )?)),
            None => {
                tracing::warn!(
                    model = name,
                    "no INT8 calibration table for this model file; one-line plates are read in float"
                );
                Ok(reader)
            }
        }
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
