//! Opening the models a command needs, each verified against the manifest first.

use anyhow::Context;
use vigil_infer::model::OnnxModel;
use vigil_infer::ocr::{Alphabet, TextRecogniser};
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
    /// [`vigil_infer::ctc_head`]).
    pub fn recogniser(
        &self,
        name: &str,
        options: SessionOptions,
        alphabet: Alphabet,
    ) -> anyhow::Result<TextRecogniser> {
        let entry = self
            .manifest
            .model(name)
            .with_context(|| format!("no model {name:?} in {}", self.paths.manifest.display()))?;
        let dir = self.paths.models_dir();
        store::require(&self.manifest, &dir, &[name])?;
        let dict = entry.charset.as_ref().map(|c| dir.join(&c.file));
        Ok(TextRecogniser::open(
            self.runtime,
            name,
            &dir.join(&entry.file),
            dict.as_deref(),
            options,
            alphabet,
        )?)
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
