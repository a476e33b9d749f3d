use crate::StageError;

/// One step of a pipeline. The runner gives each stage its own thread, so `process`
/// may block (a model forward pass) without stalling other stages.
pub trait Stage: Send + 'static {
    type Input: Send + 'static;
    type Output: Send + 'static;

    /// Short, stable name used in metrics and error records.
    fn name(&self) -> &str;

    fn process(&mut self, input: Self::Input) -> Result<Self::Output, StageError>;
}

/// A stage made from a closure; handy for glue steps and tests.
pub struct FnStage<I, O, F> {
    name: String,
    f: F,
    _types: std::marker::PhantomData<fn(I) -> O>,
}

impl<I, O, F> FnStage<I, O, F>
where
    F: FnMut(I) -> Result<O, StageError>,
{
    pub fn new(name: impl Into<String>, f: F) -> Self {
        FnStage {
            name: name.into(),
            f,
            _types: std::marker::PhantomData,
        }
    }
}

impl<I, O, F> Stage for FnStage<I, O, F>
where
    I: Send + 'static,
    O: Send + 'static,
    F: FnMut(I) -> Result<O, StageError> + Send + 'static,
{
    type Input = I;
    type Output = O;

    fn name(&self) -> &str {
        &self.name
    }

    fn process(&mut self, input: I) -> Result<O, StageError> {
        (self.f)(input)
    }
}
