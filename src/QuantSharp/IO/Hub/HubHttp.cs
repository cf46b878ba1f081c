using System.Net;
using System.Net.Http.Headers;

namespace QuantSharp.IO.Hub;

/// <summary>
/// HTTP to the Hub: bearer token for the endpoint's host only, redirects followed by hand (so metadata headers of the
/// first answer stay visible and the token never travels to a CDN), bounded retries with exponential backoff, and
/// status codes turned into errors a user can act on.
/// </summary>
internal sealed class HubHttp : IDisposable
{
    private const int MaxRedirects = 10;
    private readonly HttpClient _client;
    private readonly HubOptions _options;
    private readonly Uri _endpoint;

    public HubHttp(HubOptions options)
    {
        _options = options;
        if (!Uri.TryCreate(options.Endpoint.TrimEnd('/') + "/", UriKind.Absolute, out var endpoint) || endpoint.Scheme is not ("http" or "https"))
            throw new QuantSharpException($"HF_ENDPOINT '{options.Endpoint}' is not an http(s) URL.");
        _endpoint = endpoint;
        _client = new HttpClient(new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None, // sizes and hashes are of the bytes as stored
            ConnectTimeout = options.RequestTimeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        })
        {
            Timeout = Timeout.InfiniteTimeSpan, // per-request and per-read timeouts are applied by hand
        };
        _client.DefaultRequestHeaders.UserAgent.ParseAdd("quantsharp/1.0");
    }

    public string Url(string relative) => new Uri(_endpoint, relative).ToString();

    /// <summary>Runs one attempt after another until it succeeds, fails for good, or the attempts run out.</summary>
    public async Task<T> WithRetriesAsync<T>(string url, Func<Task<T>> attempt)
    {
        for (int n = 1; ; n++)
        {
            try
            {
                return await attempt().ConfigureAwait(false);
            }
            catch (HubTransientException) when (n < _options.MaxAttempts)
            {
                double factor = Math.Pow(2, n - 1);
                var delay = TimeSpan.FromTicks((long)Math.Min(_options.RetryBaseDelay.Ticks * factor, _options.RetryMaxDelay.Ticks));
                await Task.Delay(delay).ConfigureAwait(false);
            }
            catch (HubTransientException e)
            {
                throw new HubNetworkException(url, $"{e.Message} (after {_options.MaxAttempts} attempts)", _options.CacheDir, e);
            }
        }
    }

    /// <summary>
    /// Sends a request, following redirects: relative ones always (renamed repositories), absolute ones only when
    /// <paramref name="followAbsolute"/> (a GET to the CDN; a HEAD wants the Hub's own headers on the redirect).
    /// Network failures and 429/5xx throw <see cref="HubTransientException"/>; the caller disposes the response.
    /// </summary>
    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string url, long rangeFrom, bool followAbsolute)
    {
        var current = new Uri(url);
        for (int hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(method, current);
            request.Headers.AcceptEncoding.ParseAdd("identity");
            if (rangeFrom > 0) request.Headers.Range = new RangeHeaderValue(rangeFrom, null);
            if (_options.Token is { Length: > 0 } token && SameOrigin(current, _endpoint))
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);

            HttpResponseMessage response;
            using (var timeout = new CancellationTokenSource(_options.RequestTimeout))
            {
                try
                {
                    response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
                {
                    throw new HubTransientException(e is OperationCanceledException ? $"no answer within {_options.RequestTimeout.TotalSeconds:0} s" : e.Message, e);
                }
            }

            int status = (int)response.StatusCode;
            if (status is >= 300 and < 400 && response.Headers.TryGetValues("Location", out var locations) && locations.FirstOrDefault() is { Length: > 0 } location)
            {
                // Read as text: on Unix "/path" would parse as an absolute file:// URI.
                bool relative = !(Uri.TryCreate(location, UriKind.Absolute, out var absolute) && absolute.Scheme is "http" or "https");
                if (relative || followAbsolute)
                {
                    response.Dispose();
                    if (hop >= MaxRedirects) throw new QuantSharpException($"{url}: more than {MaxRedirects} redirects.");
                    current = relative ? new Uri(current, location) : absolute!;
                    continue;
                }
                return response;
            }
            if (status == 429 || status >= 500)
            {
                response.Dispose();
                throw new HubTransientException($"HTTP {status} {response.ReasonPhrase} from {current}");
            }
            return response;
        }
    }

    /// <summary>Turns a failed status into the error a user can act on; <paramref name="what"/> names the model/file.</summary>
    public QuantSharpException Failure(HttpResponseMessage response, HubModelId id, string url, string? file = null)
    {
        int status = (int)response.StatusCode;
        string code = response.Headers.TryGetValues("X-Error-Code", out var codes) ? codes.FirstOrDefault() ?? "" : "";
        string tokenHint = _options.Token is { Length: > 0 }
            ? "HF_TOKEN is set but has no access: request or accept access on the model's page with that account"
            : "set HF_TOKEN to a token with access (https://huggingface.co/settings/tokens), after accepting the model's terms on its page";
        return status switch
        {
            401 or 403 => new QuantSharpException($"model {id.RepoId} is gated or private{(code == "RepoNotFound" ? " (or does not exist)" : "")}: "
                + $"{tokenHint} ({url}: HTTP {status})."),
            404 when code == "RevisionNotFound" || (file is null && code != "RepoNotFound" && id.Revision != HubModelId.DefaultRevision) =>
                new QuantSharpException($"model {id.RepoId}: revision '{id.Revision}' not found ({url}: HTTP 404)."),
            404 when file is not null && code != "RepoNotFound" =>
                new QuantSharpException($"model {id}: file '{file}' not found in the repository ({url}: HTTP 404)."),
            404 => new QuantSharpException($"model {id.RepoId}: repository not found on {_endpoint.GetLeftPart(UriPartial.Authority)} ({url}: HTTP 404); check the name."),
            _ => new QuantSharpException($"model {id}: {url} answered HTTP {status} {response.ReasonPhrase}."),
        };
    }

    private static bool SameOrigin(Uri a, Uri b) =>
        a.Scheme == b.Scheme && string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    public void Dispose() => _client.Dispose();
}
