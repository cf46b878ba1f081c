using QuantSharp.Backend;
using TorchSharp;

TorchRuntime.EnsureNativeLoaded();
using var a = torch.randn(4, 4);
Console.WriteLine(a.matmul(a.t()).sum().item<float>());
