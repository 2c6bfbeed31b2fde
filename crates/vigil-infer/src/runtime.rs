//! ONNX Runtime: one environment per process, sessions with the configured
//! threads, optimisation level and execution provider.
//!
//! The runtime library is loaded from the model store (`models/lib/`), never
//! downloaded: `ort` is built with `load-dynamic`, and [`Runtime::load`]
//! returns an error instead of panicking when the library is missing.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use vigil_core::config::ExecutionProvider;

use crate::InferError;

/// How a session should run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionOptions {
    /// Intra-op threads; 0 lets ONNX Runtime choose.
    pub threads: usize,
    pub optimization: Optimization,
    pub provider: ExecutionProvider,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            threads: 0,
            optimization: Optimization::All,
            provider: ExecutionProvider::Cpu,
        }
    }
}

/// The site config's level, re-exported so callers need not name vigil-core.
pub use vigil_core::config::GraphOptimization as Optimization;

fn graph_level(o: Optimization) -> GraphOptimizationLevel {
    match o {
        Optimization::Disable => GraphOptimizationLevel::Disable,
        Optimization::Basic => GraphOptimizationLevel::Level1,
        Optimization::Extended => GraphOptimizationLevel::Level2,
        Optimization::All => GraphOptimizationLevel::All,
    }
}

impl From<&vigil_core::config::Detector> for SessionOptions {
    /// Threads, optimisation level and execution provider from `[detector]`.
    fn from(d: &vigil_core::config::Detector) -> Self {
        Self {
            threads: d.threads,
            optimization: d.optimization,
            provider: d.execution_provider,
        }
    }
}

/// The process's ONNX Runtime environment.
pub struct Runtime {
    env: ort::environment::Environment,
    library: PathBuf,
}

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

impl Runtime {
    /// Loads the ONNX Runtime library once per process and creates the
    /// environment. Later calls return the same runtime, whatever path they
    /// pass (ONNX Runtime cannot be loaded twice).
    pub fn load(library: &Path) -> Result<&'static Runtime, InferError> {
        let result = RUNTIME.get_or_init(|| {
            if !library.exists() {
                return Err(format!(
                    "the ONNX Runtime library {} is missing; fetch it with `vigil models fetch`",
                    library.display()
                ));
            }
            let builder = ort::init_from(library).map_err(|e| {
                format!(
                    "cannot load the ONNX Runtime library {}: {e}",
                    library.display()
                )
            })?;
            let env = builder
                .with_name("vigil")
                .build()
                .map_err(|e| format!("cannot create the ONNX Runtime environment: {e}"))?;
            Ok(Runtime {
                env,
                library: library.to_owned(),
            })
        });
        result.as_ref().map_err(|e| InferError::Runtime(e.clone()))
    }

    pub fn library(&self) -> &Path {
        &self.library
    }

    /// Opens a model. A GPU provider that cannot be used (not compiled in,
    /// no driver, no device) falls back to CPU with a warning; the returned
    /// [`Provider`] says which one runs.
    pub fn session(
        &self,
        model: &Path,
        options: SessionOptions,
    ) -> Result<(Session, Provider), InferError> {
        if !model.exists() {
            return Err(InferError::ModelMissing(model.to_owned()));
        }
        self.open(ModelSource::File(model), model, options)
    }

    /// [`Runtime::session`] for a model already in memory (e.g. edited after
    /// loading); `label` names it in messages.
    pub fn session_from_memory(
        &self,
        label: &Path,
        bytes: &[u8],
        options: SessionOptions,
    ) -> Result<(Session, Provider), InferError> {
        self.open(ModelSource::Memory(bytes), label, options)
    }

    fn open(
        &self,
        source: ModelSource<'_>,
        model: &Path,
        options: SessionOptions,
    ) -> Result<(Session, Provider), InferError> {
        if options.provider != ExecutionProvider::Cpu {
            match self.gpu_session(source, options) {
                Ok(session) => return Ok((session, Provider::from(options.provider))),
                Err(reason) => tracing::warn!(
                    model = %model.display(),
                    "execution provider {:?} unavailable ({reason}); falling back to CPU",
                    options.provider
                ),
            }
        }
        let session = self
            .builder(options)
            .and_then(|mut b| source.commit(&mut b))
            .map_err(|message| InferError::Load {
                model: model.to_owned(),
                message,
            })?;
        Ok((session, Provider::Cpu))
    }

    fn builder(
        &self,
        options: SessionOptions,
    ) -> Result<ort::session::builder::SessionBuilder, String> {
        let mut builder = Session::builder(&self.env)
            .map_err(|e| e.to_string())?
            .with_optimization_level(graph_level(options.optimization))
            .map_err(|e| e.to_string())?;
        if options.threads > 0 {
            builder = builder
                .with_intra_threads(options.threads)
                .map_err(|e| e.to_string())?;
        }
        // Idle intra-op threads sleep instead of spinning. Vigil alternates
        // several sessions on two cores (detector, text detector, the
        // recognisers): after each run a spinning pool kept both cores busy
        // while the next model ran, which doubled the plate stage's time
        // (a text detector + recogniser pair: 94 -> 54 ms a plate), and a
        // lone session gains nothing measurable from spinning here.
        builder = builder
            .with_intra_op_spinning(false)
            .map_err(|e| e.to_string())?;
        Ok(builder)
    }

    #[allow(unused_variables)]
    fn gpu_session(
        &self,
        source: ModelSource<'_>,
        options: SessionOptions,
    ) -> Result<Session, String> {
        let provider: ort::ep::ExecutionProviderDispatch = match options.provider {
            ExecutionProvider::Cpu => return Err("CPU requested".into()),
            #[cfg(feature = "cuda")]
            // Heuristic cuDNN algorithm choice: the exhaustive default
            // benchmarks every convolution again for each new input shape,
            // and plate crops arrive in a new width almost every time.
            ExecutionProvider::Cuda => ort::ep::CUDA::default()
                .with_conv_algorithm_search(ort::ep::cuda::ConvAlgorithmSearch::Heuristic)
                .build()
                .error_on_failure(),
            #[cfg(feature = "tensorrt")]
            ExecutionProvider::Tensorrt => ort::ep::TensorRT::default().build().error_on_failure(),
            #[allow(unreachable_patterns)]
            other => {
                return Err(format!(
                    "this build has no {other:?} support; rebuild with `--features {}`",
                    format!("{other:?}").to_lowercase()
                ))
            }
        };
        #[allow(unreachable_code)]
        {
            let mut builder = self
                .builder(options)?
                .with_execution_providers([provider])
                .map_err(|e| e.to_string())?;
            source.commit(&mut builder)
        }
    }
}

/// Where a session's model comes from.
#[derive(Clone, Copy)]
enum ModelSource<'a> {
    File(&'a Path),
    Memory(&'a [u8]),
}

impl ModelSource<'_> {
    fn commit(
        self,
        builder: &mut ort::session::builder::SessionBuilder,
    ) -> Result<Session, String> {
        match self {
            ModelSource::File(path) => builder.commit_from_file(path),
            ModelSource::Memory(bytes) => builder.commit_from_memory(bytes),
        }
        .map_err(|e| e.to_string())
    }
}

/// The execution provider a session really runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Cpu,
    Cuda,
    Tensorrt,
}

impl From<ExecutionProvider> for Provider {
    fn from(p: ExecutionProvider) -> Self {
        match p {
            ExecutionProvider::Cpu => Provider::Cpu,
            ExecutionProvider::Cuda => Provider::Cuda,
            ExecutionProvider::Tensorrt => Provider::Tensorrt,
        }
    }
}
