using QuantSharp.IO.Gguf;

namespace QuantSharp.Export.Gguf;

/// <summary>The file types QuantSharp exports: the type given to every 2-D weight (norms stay F32).</summary>
public enum GgufType { F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, IQ4_NL, MXFP4 }

public static class GgufTypes
{
    public static GgufType Parse(string text, string flag = "--gguf-type") => text.Trim().ToLowerInvariant() switch
    {
        "f32" => GgufType.F32,
        "f16" => GgufType.F16,
        "bf16" => GgufType.BF16,
        "q8_0" => GgufType.Q8_0,
        "q4_0" => GgufType.Q4_0,
        "q4_1" => GgufType.Q4_1,
        "q4_k" or "q4_k_s" => GgufType.Q4_K,
        "iq4_nl" => GgufType.IQ4_NL,
        "mxfp4" => GgufType.MXFP4,
        _ => throw new QuantSharpException($"{flag} {text}: expected one of f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, iq4_nl, mxfp4."),
    };

    public static string Name(GgufType t) => t.ToString().ToLowerInvariant();

    public static GgmlType Ggml(GgufType t) => t switch
    {
        GgufType.F32 => GgmlType.F32,
        GgufType.F16 => GgmlType.F16,
        GgufType.BF16 => GgmlType.BF16,
        GgufType.Q8_0 => GgmlType.Q8_0,
        GgufType.Q4_0 => GgmlType.Q4_0,
        GgufType.Q4_1 => GgmlType.Q4_1,
        GgufType.Q4_K => GgmlType.Q4_K,
        GgufType.IQ4_NL => GgmlType.IQ4_NL,
        GgufType.MXFP4 => GgmlType.MXFP4,
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    /// <summary>llama.cpp's general.file_type number (llama_ftype) for a file made mostly of this type.</summary>
    public static uint FileType(GgufType t) => t switch
    {
        GgufType.F32 => 0,
        GgufType.F16 => 1,
        GgufType.Q4_0 => 2,
        GgufType.Q4_1 => 3,
        GgufType.Q8_0 => 7,
        GgufType.Q4_K => 14,   // Q4_K_S: Q4_K throughout
        GgufType.IQ4_NL => 25,
        GgufType.BF16 => 32,
        GgufType.MXFP4 => 38,
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    /// <summary>Whether the type's quantizer uses an importance matrix (as in ggml: not Q8_0, MXFP4 or floats).</summary>
    public static bool UsesImportance(GgufType t) => t is GgufType.Q4_0 or GgufType.Q4_1 or GgufType.Q4_K or GgufType.IQ4_NL;

    /// <summary>
    /// The type a weight with rows of <paramref name="rowLength"/> values gets: the requested one, or llama.cpp's
    /// fallback when rows are not whole blocks (Q4_K → Q5_0; then F16).
    /// </summary>
    public static GgmlType ForRow(GgmlType requested, long rowLength)
    {
        int block = GgmlTypeSizes.Geometry(requested)!.Value.BlockValues;
        if (rowLength % block == 0) return requested;
        GgmlType fallback = requested == GgmlType.Q4_K ? GgmlType.Q5_0 : GgmlType.F16;
        return rowLength % GgmlTypeSizes.Geometry(fallback)!.Value.BlockValues == 0 ? fallback : GgmlType.F16;
    }
}
