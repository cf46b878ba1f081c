using System.Globalization;
using System.Runtime.InteropServices;
using QuantSharp.Quantizers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantSharp.Export.Onnx;

/// <summary>
/// One linear's MatMulNBits inputs, quantized by the project's <see cref="IntWeightQuantizer"/> (min/max, group =
/// block size) so the ONNX weights are exactly the weights QuantSharp evaluates. Our symmetric codes are signed
/// ([−2^(b−1), 2^(b−1) − 1]); adding 2^(b−1) gives ORT's unsigned codes with its default zero point 2^(b−1), so
/// symmetric layers need no zero_points input. Asymmetric codes and zero points are already unsigned.
/// </summary>
public sealed class MatMulNBitsWeights
{
    public required int N { get; init; }
    public required int K { get; init; }
    public required int Bits { get; init; }
    public required int BlockSize { get; init; }
    public int KBlocks => K / BlockSize;

    /// <summary>B: uint8 [N, KBlocks, BlobSize].</summary>
    public required byte[] Packed { get; init; }

    /// <summary>scales: float32 [N, KBlocks].</summary>
    public required float[] Scales { get; init; }

    /// <summary>zero_points: uint8 [N, ZeroPointRowBytes], or null for symmetric (ORT's default applies).</summary>
    public byte[]? ZeroPoints { get; init; }

    public long StoredBytes => Packed.LongLength + 4L * Scales.LongLength + (ZeroPoints?.LongLength ?? 0);

    /// <summary>The quantizer the exporter (and a reference fake-quantization) uses for these options.</summary>
    public static IWeightQuantizer QuantizerFor(OnnxExportOptions options) =>
        WeightQuantizer.Create(QuantSpec.Int(options.Bits, options.BlockSize, options.Symmetric), "--");

    /// <summary>Checks that the block size divides the input width, naming the flag and the tensor.</summary>
    public static void CheckWidth(long inFeatures, OnnxExportOptions options, string tensorName)
    {
        if (inFeatures % options.BlockSize != 0)
            throw new QuantSharpException(
                $"--block-size {options.BlockSize.ToString(CultureInfo.InvariantCulture)} does not divide the " +
                $"{inFeatures.ToString(CultureInfo.InvariantCulture)} input columns of '{tensorName}'.");
    }

    /// <summary>Quantizes W [N, K] and packs it.</summary>
    public static MatMulNBitsWeights Quantize(Tensor weight, OnnxExportOptions options, string tensorName)
    {
        options.Validate();
        CheckWidth(weight.shape[1], options, tensorName);
        int n = checked((int)weight.shape[0]), k = checked((int)weight.shape[1]);
        var quantizer = QuantizerFor(options);
        using var scope = NewDisposeScope();
        var w = weight.detach().to(ScalarType.Float32, CPU);
        using var p = quantizer.ComputeParams(w, tensorName: tensorName);
        Tensor codes = quantizer.Codes(w, p);
        Tensor unsigned = options.Symmetric
            ? codes.to(ScalarType.Int32).add(MatMulNBitsPacking.DefaultZeroPoint(options.Bits)).to(ScalarType.Byte)
            : codes.to(ScalarType.Byte);
        byte[] codeBytes = unsigned.contiguous().data<byte>().ToArray();
        float[] scales = p.Scale.to(ScalarType.Float32).contiguous().data<float>().ToArray();
        byte[]? zeros = null;
        if (!options.Symmetric)
        {
            byte[] raw = p.Zero!.to(ScalarType.Byte).contiguous().data<byte>().ToArray();
            zeros = MatMulNBitsPacking.PackZeroPoints(raw, n, k / options.BlockSize, options.Bits);
        }
        return new MatMulNBitsWeights
        {
            N = n,
            K = k,
            Bits = options.Bits,
            BlockSize = options.BlockSize,
            Packed = MatMulNBitsPacking.PackWeights(codeBytes, n, k, options.Bits, options.BlockSize),
            Scales = scales,
            ZeroPoints = zeros,
        };
    }

    /// <summary>The float weights these bytes decode to: (code − zero)·scale, [N, K] — what ORT multiplies by.</summary>
    public float[] Dequantize()
    {
        var w = new float[(long)N * K];
        int rowZeroBytes = MatMulNBitsPacking.ZeroPointRowBytes(KBlocks, Bits);
        for (int r = 0; r < N; r++)
        {
            for (int c = 0; c < K; c++)
            {
                long i = (long)r * K + c;
                int code = Bits == 8 ? Packed[i] : (Packed[i / 2] >> (int)(4 * (i % 2))) & 0xF;
                int b = c / BlockSize;
                int zero = ZeroPoints is null
                    ? MatMulNBitsPacking.DefaultZeroPoint(Bits)
                    : Bits == 8 ? ZeroPoints[r * KBlocks + b] : (ZeroPoints[r * rowZeroBytes + b / 2] >> (4 * (b % 2))) & 0xF;
                w[i] = (code - zero) * Scales[r * KBlocks + b];
            }
        }
        return w;
    }

    internal static byte[] AsBytes(float[] values) => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
}
