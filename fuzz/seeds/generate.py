#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/seeds/<target>/) from the headers,
documents and messages the tests use: WWW-Authenticate values are extracted from the
Rust sources of the tests; documents and messages are the shapes the test servers (and
the real servers of tests/node, tests/python) send. Run from anywhere; idempotent.

The JWT and JWK set seeds (server_jwt, server_jwks) are made with fresh keys (RSA, EC,
Ed25519) when the `cryptography` package is available.
"""
import hashlib
import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
SEEDS = pathlib.Path(__file__).resolve().parent


def write(target, items):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    for item in items:
        data = item if isinstance(item, bytes) else (item if isinstance(item, str) else json.dumps(item)).encode()
        name = hashlib.sha1(data).hexdigest()[:16]
        (d / name).write_bytes(data)
    print(f"{target}: {len(items)} seeds")


def rust_strings(paths, pattern):
    out = set()
    for p in paths:
        text = (ROOT / p).read_text()
        for m in re.finditer(r'r#"(.*?)"#', text, re.S):
            if re.match(pattern, m.group(1)):
                out.add(m.group(1))
        for m in re.finditer(r'"((?:[^"\\]|\\.)*)"', text):
            s = m.group(1)
            if re.match(pattern, s):
                out.add(s.encode().decode("unicode_escape", errors="ignore"))
    return sorted(out)


# ---- WWW-Authenticate ------------------------------------------------------------------
headers = rust_strings(
    ["crates/mcp-oauth/src/challenge.rs", "crates/mcp-oauth/src/doctor.rs", "crates/mcp-oauth/src/mcp/tests.rs",
     "crates/mcp-oauth/tests/engine.rs", "crates/mcp-oauth/tests/doctor.rs", "crates/mcp-oauth-server/src/response.rs"],
    r"^(Bearer|Basic|DPoP|Negotiate|Digest|Newauth|bearer)\b",
)
headers += [
    'Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"',
    'Bearer error="insufficient_scope", scope="files:read files:write", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource"',
    'DPoP algs="ES256 PS256", error="use_dpop_nonce", error_description="Authorization server requires nonce in DPoP proof"',
    'Bearer realm="example", Basic realm="x", DPoP algs="ES256"',
    'Bearer resource_metadata=https://mcp.example.com/.well-known/oauth-protected-resource?x=1',
    "Basic dXNlcjpwYXNz==, Bearer",
    'Bearer error_description="see resource_metadata=\\"http://evil\\"", resource_metadata="http://good"',
    "Bearer realm='x'",
    "Bearer realm=\"a\"\0Bearer scope=\"b\"",
]
write("www_authenticate", headers)

# ---- Protected Resource Metadata -------------------------------------------------------
prms = [
    {"resource": "https://mcp.example.com/mcp", "authorization_servers": ["https://auth.example.com"], "scopes_supported": ["mcp:read"]},
    {"resource": "http://localhost:3000/mcp", "authorization_servers": ["http://localhost:3000"], "bearer_methods_supported": ["header"],
     "resource_name": "Test server", "dpop_signing_alg_values_supported": ["ES256"], "dpop_bound_access_tokens_required": False},
    {"resource": "https://mcp.example.com", "authorization_servers": ["https://a.example.com", "https://b.example.com/tenant1"]},
    {"resource": "https://evil.example.com/mcp", "authorization_servers": []},
    {"resource": "https://api.githubcopilot.com/mcp/", "authorization_servers": ["https://github.com/login/oauth"],
     "scopes_supported": ["gist", "notifications", "public_repo", "repo"], "bearer_methods_supported": ["header"], "resource_name": "GitHub MCP Server"},
]
write("prm_metadata", prms + ["/.well-known/oauth-protected-resource/mcp", "https://mcp.example.com/.well-known/oauth-protected-resource", "meta.json", "//other/x"])

# ---- Authorization server metadata -----------------------------------------------------
base = "https://auth.example.com"
asm = [
    {"issuer": base, "authorization_endpoint": base + "/authorize", "token_endpoint": base + "/token",
     "registration_endpoint": base + "/register", "response_types_supported": ["code"],
     "code_challenge_methods_supported": ["S256"], "grant_types_supported": ["authorization_code", "refresh_token"],
     "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"], "authorization_response_iss_parameter_supported": True},
    {"issuer": "http://localhost:3000/", "authorization_endpoint": "http://localhost:3000/auth", "token_endpoint": "http://localhost:3000/token",
     "revocation_endpoint": "http://localhost:3000/token/revocation", "device_authorization_endpoint": "http://localhost:3000/device/auth",
     "jwks_uri": "http://localhost:3000/jwks", "scopes_supported": ["openid", "offline_access", "mcp:tools"],
     "code_challenge_methods_supported": ["S256"], "dpop_signing_alg_values_supported": ["ES256", "EdDSA"],
     "client_id_metadata_document_supported": True},
    {"issuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc", "authorization_endpoint": "https://x.auth.us-east-1.amazoncognito.com/oauth2/authorize",
     "token_endpoint": "https://x.auth.us-east-1.amazoncognito.com/oauth2/token", "response_types_supported": ["code", "token"]},
    {"issuer": base, "authorization_endpoint": "http://auth.example.com/authorize", "token_endpoint": base + "/token", "code_challenge_methods_supported": ["plain"]},
]
write("as_metadata", asm + ["https://auth.example.com/tenant1/", "https://auth.example.com?x", "http://127.0.0.1:9"])

# ---- Dynamic Client Registration responses (first two bytes: status, methods) ----------
dcr = [
    {"client_id": "client-1"},
    {"client_id": "s6BhdRkqt3", "client_secret": "cf136dc3c1fc93f31185e5885805d", "client_secret_expires_at": 2893276800,
     "token_endpoint_auth_method": "client_secret_basic", "redirect_uris": ["http://127.0.0.1:33418/callback"]},
    {"client_id": "abc", "client_secret": "", "client_id_issued_at": 1700000000},
    {"error": "invalid_redirect_uri", "error_description": "The redirection URI is not allowed"},
]
write("dcr_response", [b"\x00\x00" + json.dumps(d).encode() for d in dcr] + [b"\x03\x01" + json.dumps(dcr[3]).encode(), b"\x04\x02<html>oops</html>"])

# ---- OAuth callback queries ------------------------------------------------------------
write("oauth_callback", [
    "code=SplxlOBeZQQYbYS6WxSbIA&state=xyz&iss=https%3A%2F%2Fauth.example.com",
    "error=access_denied&error_description=The+user+denied&state=s1&iss=http%3A%2F%2Flocalhost%3A9000",
    "code=a&code=b&state=s",
    "http://127.0.0.1:5000/callback?code=x&state=y",
    "?code=x&state=y",
    "  bare-code-value \n",
    "code=%E2%82%AC&state=%FF&iss=",
])

# ---- Token responses (first byte: status) ----------------------------------------------
toks = [
    {"access_token": "2YotnFZFEjr1zCsicMWpAA", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "tGzv3JOkF0XG5Qx2TlKWIA", "scope": "mcp:read"},
    {"access_token": "gho_16C7e42F292c6912E7710c838347Ae178B4a", "token_type": "bearer", "scope": "repo,gist"},
    {"access_token": "x", "token_type": "DPoP", "expires_in": "3599", "refresh_token": ""},
    {"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired.", "error_uri": "https://docs.github.com"},
    {"error": "invalid_grant"},
    {"access_token": "", "expires_in": -5},
    {"access_token": "y", "expires_in": 1e308},
]
write("token_response", [b"\x00" + json.dumps(t).encode() for t in toks] + [b"\x02" + json.dumps(toks[4]).encode(), b"\x04<html>503</html>"])

# ---- SSE streams (first four bytes: chunk sizes) ----------------------------------------
sse = [
    b"\x01\x02\x03\x04event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
    b"\x05\x05\x05\x05\xef\xbb\xbfid: 7\r\nretry: 1500\r\ndata: a\r\ndata: b\r\n\r\n: comment\n\n",
    b"\x01\x01\x01\x01data:x\rdata: y\r\rid:\x00bad\ndata: z",
    b"\x03\x07\x01\x02event: endpoint\ndata: /messages?sessionId=abc\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n",
]
write("sse", sse)

# ---- JSON-RPC lines (first three bytes: size limit, read sizes) -------------------------
lines = [
    b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}',
    b'{"jsonrpc":"2.0","method":"notifications/initialized"}',
    b'{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}',
    b'{"jsonrpc":"2.0","id":2,"result":{"tools":[]}}',
    b'{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"Method not found"}}',
    b'{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,"reason":"x"}}',
    b'{"jsonrpc":"2.0","id":null,"method":"x"}',
    b'not json',
    b'{"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"file:///etc/passwd"}}',
]
write("jsonrpc_framing", [b"\xff\x03\x10" + b"\n".join(lines) + b"\n", b"\x08\x01\x01" + b"\r\n".join(lines), b"\x40\x05\x09" + lines[2] + b"\n\n" + lines[0]]
      + [b"\xff\x00\x00" + l for l in lines])

# ---- URLs for the address policy --------------------------------------------------------
write("address_policy", [
    "http://169.254.169.254/latest/meta-data/", "http://2852039166/", "http://0xA9FEA9FE/", "http://[::ffff:169.254.169.254]/",
    "http://[fd00:ec2::254]/", "https://10.0.0.7/", "http://127.1/", "http://[::]/", "http://100.100.100.200/",
    "https://[64:ff9b::a9fe:a9fe]/", "https://[2002:a9fe:a9fe::1]/", "http://192.168.0.1:8080/x",
])

# ---- JWT / JWK set seeds (real keys, made with the `cryptography` package if present) --
def b64u(b):
    import base64
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt_seeds():
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    except ImportError:
        print("server_jwt, server_jwks: skipped (pip install cryptography)")
        return
    ec_key = ec.generate_private_key(ec.SECP256R1())
    nums = ec_key.public_key().public_numbers()
    ec_jwk = {"kty": "EC", "crv": "P-256", "x": b64u(nums.x.to_bytes(32, "big")), "y": b64u(nums.y.to_bytes(32, "big")),
              "kid": "k1", "alg": "ES256", "use": "sig"}
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rn = rsa_key.public_key().public_numbers()
    rsa_jwk = {"kty": "RSA", "n": b64u(rn.n.to_bytes(256, "big")), "e": b64u(rn.e.to_bytes(3, "big")), "kid": "r1", "alg": "RS256"}
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_jwk = {"kty": "OKP", "crv": "Ed25519", "kid": "e1",
              "x": b64u(ed_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))}
    claims = {"iss": "https://as.example.com", "aud": "https://mcp.example.com/mcp", "sub": "user-1", "client_id": "c1",
              "scope": "mcp:read mcp:write", "exp": 4102444800, "iat": 1700000000, "nbf": 1700000000, "jti": "j1"}

    def sign(alg, kid, payload, key):
        header = {"alg": alg, "typ": "at+jwt", "kid": kid}
        signing_input = (b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(payload).encode())).encode()
        if alg == "ES256":
            r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        elif alg == "RS256":
            sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            sig = key.sign(signing_input)
        return signing_input.decode() + "." + b64u(sig)

    tokens = [sign("ES256", "k1", claims, ec_key), sign("RS256", "r1", claims, rsa_key), sign("EdDSA", "e1", claims, ed_key),
              sign("ES256", "k1", dict(claims, cnf={"jkt": "x"}), ec_key), "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
              "a.b.c", "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.e30.AAAA"]
    write("server_jwt",
          [b"\x00" + t.encode() for t in tokens]
          + [b"\x01" + json.dumps(c).encode() for c in (claims, dict(claims, aud=["x", "https://mcp.example.com/mcp"]),
                                                       dict(claims, exp="soon"), {"iss": "https://as.example.com"})]
          + [b"\x02" + json.dumps(h).encode() for h in ({"alg": "ES256", "kid": "k1", "typ": "at+jwt"},
                                                       {"alg": "ES256", "crit": ["exp"], "kid": "k1"},
                                                       {"alg": "ES256", "jku": "https://evil/jwks", "x5u": "https://evil"})])
    jwks = [{"keys": [ec_jwk, rsa_jwk, ed_jwk]}, {"keys": [dict(ec_jwk, use="enc")]}, {"keys": [dict(rsa_jwk, key_ops=["sign"])]},
            {"keys": [{"kty": "oct", "k": b64u(b"0123456789abcdef0123456789abcdef"), "kid": "h1", "alg": "HS256"}]},
            {"keys": [dict(ec_jwk, alg="RS256")]}, {"keys": "nope"}]
    write("server_jwks", [json.dumps(j).encode() + b"\xff" + tokens[i % 3].encode() for i, j in enumerate(jwks)]
          + [json.dumps(jwks[3]).encode() + b"\xff" + tokens[6].encode()])


jwt_seeds()
