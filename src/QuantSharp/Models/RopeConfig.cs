using System.Text.Json.Nodes;

namespace QuantSharp.Models;

public enum RopeType { Default, Linear, Llama3 }

/// <summary>
/// Rotary position embedding parameters. transformers 5 writes <c>rope_parameters</c> {rope_theta, rope_type, ...};
/// older configs write <c>rope_theta</c> and an optional <c>rope_scaling</c> object. Both are accepted.
/// </summary>
public sealed record RopeConfig(
    double Theta,
    RopeType Type,
    double Factor = 1.0,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0,
    int OriginalMaxPositionEmbeddings = 8192,
    int RotaryDim = 0)
{
    internal static RopeConfig Parse(JsonObject root, ConfigReader r, int headDim)
    {
        JsonObject? p = root["rope_parameters"] as JsonObject;
        JsonObject? scaling = root["rope_scaling"] as JsonObject;
        double theta = (p is null ? null : r.OptionalDouble(p, "rope_theta")) ?? r.OptionalDouble("rope_theta") ?? 10000.0;
        // rope_parameters carries the scaling keys itself; legacy configs keep them in rope_scaling.
        JsonObject? s = p ?? scaling;
        string type = "default";
        if (s is not null)
        {
            string? t = r.OptionalString(s, "rope_type") ?? r.OptionalString(s, "type");
            if (t is not null) type = t;
        }
        double partial = r.OptionalDouble("partial_rotary_factor") ?? 1.0;
        int rotaryDim = (int)(headDim * partial);
        switch (type)
        {
            case "default":
                return new RopeConfig(theta, RopeType.Default, RotaryDim: rotaryDim);
            case "linear":
                return new RopeConfig(theta, RopeType.Linear, Factor: Need(r, s!, "factor"), RotaryDim: rotaryDim);
            case "llama3":
                return new RopeConfig(theta, RopeType.Llama3,
                    Factor: Need(r, s!, "factor"),
                    LowFreqFactor: Need(r, s!, "low_freq_factor"),
                    HighFreqFactor: Need(r, s!, "high_freq_factor"),
                    OriginalMaxPositionEmbeddings: r.OptionalInt(s!, "original_max_position_embeddings") ?? throw r.Error("rope scaling is missing 'original_max_position_embeddings'"),
                    RotaryDim: rotaryDim);
            default:
                throw r.Error($"unsupported rope type '{type}' (supported: default, linear, llama3)");
        }
    }

    private static double Need(ConfigReader r, JsonObject s, string key) =>
        r.OptionalDouble(s, key) ?? throw r.Error($"rope scaling is missing '{key}'");

    /// <summary>
    /// Inverse frequencies, float32 as transformers computes them: 1 / theta^(2i/d), then the llama3 or linear
    /// rescaling (llama3: long wavelengths divided by factor, short kept, a smooth blend in between).
    /// </summary>
    public float[] InverseFrequencies(int headDim)
    {
        int dim = RotaryDim > 0 ? RotaryDim : headDim;
        var inv = new float[dim / 2];
        for (int i = 0; i < inv.Length; i++)
        {
            // transformers: base ** (arange(0, dim, 2).float() / dim) in float32, then 1.0 / that.
            float expo = (float)(2 * i) / dim;
            float pow = (float)Math.Pow(Theta, expo);
            inv[i] = 1.0f / pow;
        }
        if (Type == RopeType.Linear)
        {
            for (int i = 0; i < inv.Length; i++) inv[i] = (float)(inv[i] / Factor);
        }
        else if (Type == RopeType.Llama3)
        {
            double lowWavelen = OriginalMaxPositionEmbeddings / LowFreqFactor;
            double highWavelen = OriginalMaxPositionEmbeddings / HighFreqFactor;
            for (int i = 0; i < inv.Length; i++)
            {
                double f = inv[i];
                double wavelen = 2 * Math.PI / f;
                double scaled = wavelen > lowWavelen ? f / Factor : f;
                bool medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
                if (medium)
                {
                    double smooth = (OriginalMaxPositionEmbeddings / wavelen - LowFreqFactor) / (HighFreqFactor - LowFreqFactor);
                    scaled = (1 - smooth) * scaled / Factor + smooth * scaled;
                }
                inv[i] = (float)scaled;
            }
        }
        return inv;
    }
}
