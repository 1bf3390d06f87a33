// TorchSharp keeps per-thread state (dispose scopes, no_grad); tests run one at a time in a class and
// classes in parallel would compete for the two cores anyway.
[assembly: DoNotParallelize]
