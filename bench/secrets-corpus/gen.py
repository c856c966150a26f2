#!/usr/bin/env python3
"""Labelled secret-detection corpus (issue 12): fake but well-formed credentials in the file
shapes they leak in, and look-alikes that are not secrets.

Every token is generated here from the provider's *documented* format (prefix, alphabet,
length, separators), with a seeded RNG, so the corpus is the same on every run and holds no
real credential. The formats are written down once, in PROVIDERS below, independently of
rsafe's rules (policies/secrets.toml): the corpus describes what providers issue, not what
rsafe matches.

Usage: python3 bench/secrets-corpus/gen.py OUT_DIR
Writes OUT_DIR/cases/** (the files), OUT_DIR/Dockerfile (`COPY . /srv/app/`, so that
`rsafe audit OUT_DIR` scans every file as part of the image) and OUT_DIR/labels.tsv:

    path  first_line  last_line  label  class  provider

label is `secret` (a well-formed credential), `filler` (a credential-shaped fixture whose body
is one repeated character or a counting sequence: other scanners' test suites count those as
secrets) or `clean` (a look-alike that must not be reported; recorded for the negative count
only). Every file line that is not inside a `secret`/`filler` range is expected to be clean.
"""
import base64
import json
import os
import random
import string
import sys

R = random.Random(12)

UP = string.ascii_uppercase
LO = string.ascii_lowercase
DG = string.digits
AN = UP + LO + DG
an = LO + DG
AU = UP + DG
HEX = "0123456789abcdef"
HEXU = "0123456789ABCDEF"
B64 = AN + "+/"
URL = AN + "_-"
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def r(chars, n):
    return "".join(R.choice(chars) for _ in range(n))


def uuid():
    return f"{r(HEX, 8)}-{r(HEX, 4)}-4{r(HEX, 3)}-{R.choice('89ab')}{r(HEX, 3)}-{r(HEX, 12)}"


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jwt(payload=None, header=None):
    header = header or {"alg": "HS256", "typ": "JWT"}
    payload = payload or {"sub": r(AN, 12), "iat": 1700000000 + R.randrange(10**7), "iss": "https://auth." + r(LO, 6) + ".internal"}
    return ".".join([b64url(json.dumps(header).encode()), b64url(json.dumps(payload).encode()), b64url(bytes(R.randrange(256) for _ in range(32)))])


def fmt(*parts):
    """A token from literal strings and (alphabet, length) pairs."""
    return lambda: "".join(p if isinstance(p, str) else r(*p) for p in parts)


# (provider, variable name, token generator, needs_keyword).
# needs_keyword: the format alone is not distinctive (a UUID, 32 hex); it is only a secret
# next to the provider's name, so it is always written under that variable name.
PROVIDERS = [
    ("aws-access-key", "AWS_ACCESS_KEY_ID", fmt("AKIA", (AU.replace("0", "").replace("1", "").replace("8", "").replace("9", ""), 16)), False),
    ("aws-temp-key", "AWS_ACCESS_KEY_ID", fmt("ASIA", (B32, 16)), False),
    ("aws-bedrock", "AWS_BEARER_TOKEN_BEDROCK", fmt("ABSK", (B64, 128)), False),
    ("github-pat", "GITHUB_TOKEN", fmt("ghp_", (AN, 36)), False),
    ("github-oauth", "GH_OAUTH", fmt("gho_", (AN, 36)), False),
    ("github-app-user", "GH_USER_TOKEN", fmt("ghu_", (AN, 36)), False),
    ("github-app-install", "GH_INSTALL_TOKEN", fmt("ghs_", (AN, 36)), False),
    ("github-refresh", "GH_REFRESH", fmt("ghr_", (AN, 36)), False),
    ("github-fine-grained", "GH_PAT", fmt("github_pat_", (AN, 22), "_", (AN, 59)), False),
    ("gitlab-pat", "GITLAB_TOKEN", fmt("glpat-", (URL, 20)), False),
    ("gitlab-pat-routable", "GITLAB_TOKEN", fmt("glpat-", (URL, 27), ".01.", (an, 9)), False),
    ("gitlab-deploy", "CI_DEPLOY_PASSWORD", fmt("gldt-", (URL, 20)), False),
    ("gitlab-runner", "RUNNER_TOKEN", fmt("glrt-", (URL, 20)), False),
    ("gitlab-runner-reg", "REGISTRATION_TOKEN", fmt("GR1348941", (URL, 20)), False),
    ("gitlab-feed", "GITLAB_FEED_TOKEN", fmt("glft-", (URL, 20)), False),
    ("gitlab-incoming-mail", "GITLAB_MAIL_TOKEN", fmt("glimt-", (an, 25)), False),
    ("gitlab-agent", "GITLAB_AGENT_TOKEN", fmt("glagent-", (URL, 50)), False),
    ("gitlab-trigger", "TRIGGER_TOKEN", fmt("glptt-", (HEX, 40)), False),
    ("gitlab-scim", "GITLAB_SCIM", fmt("glsoat-", (URL, 20)), False),
    ("gitlab-cicd-job", "CI_JOB_TOKEN", fmt("glcbt-", (HEX, 5), "_", (URL, 20)), False),
    ("slack-bot", "SLACK_BOT_TOKEN", fmt("xoxb-", (DG, 12), "-", (DG, 13), "-", (AN, 24)), False),
    ("slack-user", "SLACK_USER_TOKEN", fmt("xoxp-", (DG, 12), "-", (DG, 12), "-", (DG, 13), "-", (HEX, 32)), False),
    ("slack-legacy-bot", "SLACK_TOKEN", fmt("xoxb-", (DG, 11), "-", (AN, 24)), False),
    ("slack-config", "SLACK_CONFIG_TOKEN", fmt("xoxe.xoxp-1-", (AN, 150)), False),
    ("slack-refresh", "SLACK_REFRESH", fmt("xoxe-1-", (AN, 140)), False),
    ("slack-app", "SLACK_APP_TOKEN", fmt("xapp-1-A", (AU, 10), "-", (DG, 13), "-", (HEX, 64)), False),
    ("slack-webhook", "SLACK_WEBHOOK_URL", fmt("https://hooks.slack.com/services/T", (AU, 10), "/B", (AU, 10), "/", (AN, 24)), False),
    ("slack-webhook-short", "SLACK_WEBHOOK", fmt("https://hooks.slack.com/services/T", (AU, 8), "/B", (AU, 8), "/", (AN, 24)), False),
    ("slack-workflow", "SLACK_WORKFLOW_URL", fmt("https://hooks.slack.com/workflows/T", (AU, 10), "/A", (AU, 10), "/", (DG, 18), "/", (AN, 24)), False),
    ("stripe-live", "STRIPE_SECRET_KEY", fmt("sk_live_", (AN, 99)), False),
    ("stripe-test", "STRIPE_SECRET_KEY", fmt("sk_test_", (AN, 24)), False),
    ("stripe-restricted", "STRIPE_RESTRICTED_KEY", fmt("rk_live_", (AN, 24)), False),
    ("stripe-restricted-test", "STRIPE_KEY", fmt("rk_test_", (AN, 99)), False),
    ("stripe-webhook", "STRIPE_WEBHOOK_SECRET", fmt("whsec_", (AN, 32)), False),
    ("twilio-api-key", "TWILIO_API_KEY", fmt("SK", (HEX, 32)), False),
    ("twilio-auth-token", "TWILIO_AUTH_TOKEN", fmt((HEX, 32)), True),
    ("sendgrid", "SENDGRID_API_KEY", fmt("SG.", (URL, 22), ".", (URL, 43)), False),
    ("brevo", "SENDINBLUE_API_KEY", fmt("xkeysib-", (HEX, 64), "-", (AN, 16)), False),
    ("mailgun", "MAILGUN_API_KEY", fmt("key-", (HEX, 32)), False),
    ("mailgun-signing", "MAILGUN_WEBHOOK_SIGNING_KEY", fmt((HEX, 32), "-", (HEX, 8), "-", (HEX, 8)), True),
    ("mailchimp", "MAILCHIMP_API_KEY", fmt((HEX, 32), "-us", (DG, 2)), False),
    ("mandrill", "MANDRILL_API_KEY", fmt("md-", (URL, 22)), True),
    ("postmark", "POSTMARK_SERVER_TOKEN", uuid, True),
    ("sparkpost", "SPARKPOST_API_KEY", fmt((HEX, 40)), True),
    ("npm", "NPM_TOKEN", fmt("npm_", (AN, 36)), False),
    ("pypi", "TWINE_PASSWORD", fmt("pypi-AgEIcHlwaS5vcmc", (URL, 70)), False),
    ("rubygems", "GEM_HOST_API_KEY", fmt("rubygems_", (HEX, 48)), False),
    ("nuget", "NUGET_API_KEY", fmt("oy2", (an, 43)), False),
    ("cratesio", "CARGO_REGISTRY_TOKEN", fmt("cio", (AN, 32)), False),
    ("clojars", "CLOJARS_TOKEN", fmt("CLOJARS_", (an, 60)), False),
    ("packagist", "PACKAGIST_TOKEN", fmt("packagist_uut_", (HEX, 68)), False),
    ("dockerhub", "DOCKER_PASSWORD", fmt("dckr_pat_", (URL, 27)), False),
    ("artifactory-api", "ARTIFACTORY_API_KEY", fmt("AKCp", (AN, 69)), False),
    ("artifactory-ref", "JFROG_ACCESS_TOKEN", fmt("cmVmdGtuOjAxOjE3", (AN, 48)), False),
    ("openai-proj", "OPENAI_API_KEY", lambda: "sk-proj-" + r(URL, 58) + "T3BlbkFJ" + r(URL, 58), False),
    ("openai-legacy", "OPENAI_API_KEY", lambda: "sk-" + r(AN, 20) + "T3BlbkFJ" + r(AN, 20), False),
    ("anthropic", "ANTHROPIC_API_KEY", fmt("sk-ant-api03-", (URL, 93), "AA"), False),
    ("anthropic-admin", "ANTHROPIC_ADMIN_KEY", fmt("sk-ant-admin01-", (URL, 93), "AA"), False),
    ("huggingface", "HF_TOKEN", fmt("hf_", (UP + LO, 34)), False),
    ("huggingface-org", "HUGGINGFACE_ORG_TOKEN", fmt("api_org_", (UP + LO, 34)), False),
    ("groq", "GROQ_API_KEY", fmt("gsk_", (AN, 52)), False),
    ("perplexity", "PPLX_API_KEY", fmt("pplx-", (AN, 48)), False),
    ("replicate", "REPLICATE_API_TOKEN", fmt("r8_", (AN, 37)), False),
    ("xai", "XAI_API_KEY", fmt("xai-", (AN, 80)), False),
    ("openrouter", "OPENROUTER_API_KEY", fmt("sk-or-v1-", (HEX, 64)), False),
    ("langsmith", "LANGCHAIN_API_KEY", fmt("lsv2_pt_", (HEX, 32), "_", (HEX, 10)), False),
    ("cohere", "COHERE_API_KEY", fmt((AN, 40)), True),
    ("mistral", "MISTRAL_API_KEY", fmt((AN, 32)), True),
    ("deepseek", "DEEPSEEK_API_KEY", fmt("sk-", (HEX, 32)), True),
    ("pinecone", "PINECONE_API_KEY", fmt("pcsk_", (AN, 6), "_", (AN, 63)), False),
    ("vault-service", "VAULT_TOKEN", fmt("hvs.", (URL, 92)), False),
    ("vault-batch", "VAULT_TOKEN", fmt("hvb.", (URL, 138)), False),
    ("vault-legacy", "VAULT_TOKEN", fmt("s.", (AN, 24)), True),
    ("terraform-cloud", "TFE_TOKEN", fmt((an, 14), ".atlasv1.", (URL, 67)), False),
    ("digitalocean", "DIGITALOCEAN_TOKEN", fmt("dop_v1_", (HEX, 64)), False),
    ("digitalocean-oauth", "DO_OAUTH", fmt("doo_v1_", (HEX, 64)), False),
    ("doppler", "DOPPLER_TOKEN", fmt("dp.pt.", (AN, 43)), False),
    ("doppler-service", "DOPPLER_TOKEN", fmt("dp.st.prd.", (AN, 43)), False),
    ("dynatrace", "DT_API_TOKEN", fmt("dt0c01.", (AU, 24), ".", (AU, 64)), False),
    ("databricks", "DATABRICKS_TOKEN", fmt("dapi", (HEX, 32)), False),
    ("databricks-suffix", "DATABRICKS_TOKEN", fmt("dapi", (HEX, 32), "-2"), False),
    ("linear", "LINEAR_API_KEY", fmt("lin_api_", (AN, 40)), False),
    ("linear-oauth", "LINEAR_OAUTH", fmt("lin_oauth_", (HEX, 64)), False),
    ("notion", "NOTION_TOKEN", fmt("secret_", (AN, 43)), False),
    ("notion-ntn", "NOTION_API_KEY", fmt("ntn_", (DG, 11), (AN, 35)), False),
    ("shopify-access", "SHOPIFY_ACCESS_TOKEN", fmt("shpat_", (HEX, 32)), False),
    ("shopify-custom", "SHOPIFY_TOKEN", fmt("shpca_", (HEX, 32)), False),
    ("shopify-private", "SHOPIFY_PASSWORD", fmt("shppa_", (HEX, 32)), False),
    ("shopify-secret", "SHOPIFY_SHARED_SECRET", fmt("shpss_", (HEX, 32)), False),
    ("square-access", "SQUARE_ACCESS_TOKEN", fmt("EAAA", (URL, 60)), False),
    ("square-legacy", "SQUARE_TOKEN", fmt("sq0atp-", (URL, 22)), False),
    ("square-oauth", "SQUARE_OAUTH_SECRET", fmt("sq0csp-", (URL, 43)), False),
    ("telegram", "TELEGRAM_BOT_TOKEN", lambda: str(R.randrange(10**8, 10**10)) + ":AA" + r(URL, 33), False),
    ("discord-bot", "DISCORD_BOT_TOKEN", lambda: R.choice("MN") + r(AN, 25) + "." + r(URL, 6) + "." + r(URL, 38), False),
    ("discord-webhook", "DISCORD_WEBHOOK", lambda: "https://discord.com/api/webhooks/" + r(DG, 19) + "/" + r(URL, 68), False),
    ("discordapp-webhook", "DISCORD_WEBHOOK_URL", lambda: "https://discordapp.com/api/webhooks/" + r(DG, 18) + "/" + r(URL, 68), False),
    ("teams-webhook", "TEAMS_WEBHOOK", lambda: f"https://{r(an, 8)}.webhook.office.com/webhookb2/{uuid()}@{uuid()}/IncomingWebhook/{r(HEX, 32)}/{uuid()}", False),
    ("zapier-webhook", "ZAPIER_HOOK", lambda: f"https://hooks.zapier.com/hooks/catch/{r(DG, 7)}/{r(an, 6)}/", False),
    ("google-chat-webhook", "CHAT_WEBHOOK", lambda: f"https://chat.googleapis.com/v1/spaces/AAAA{r(URL, 7)}/messages?key=AIzaSy{r(URL, 33)}&token={r(URL, 43)}", False),
    ("tailscale-auth", "TS_AUTHKEY", fmt("tskey-auth-k", (AN, 11), "CNTRL-", (AN, 33)), False),
    ("tailscale-api", "TAILSCALE_API_KEY", fmt("tskey-api-k", (AN, 11), "CNTRL-", (AN, 33)), False),
    ("1password-sa", "OP_SERVICE_ACCOUNT_TOKEN", lambda: "ops_" + b64url(json.dumps({"signInAddress": "my.1password.com", "userAuth": {"method": "SRPg-4096", "alg": "PBES2g-HS256", "iterations": 650000, "salt": r(URL, 22)}, "email": r(an, 13) + "@1passwordserviceaccounts.com", "srpX": r(HEX, 64), "muk": {"alg": "A256GCM", "ext": True, "k": r(URL, 43), "key_ops": ["encrypt", "decrypt"], "kty": "oct", "kid": "mp"}, "secretKey": "A3-" + r(AU, 6) + "-" + r(AU, 6) + "-" + r(AU, 5) + "-" + r(AU, 5) + "-" + r(AU, 5) + "-" + r(AU, 5), "throttleSecret": {"seed": r(HEX, 64), "uuid": r(AU, 26)}, "deviceUuid": r(an, 26)}).encode()), False),
    ("1password-secret-key", "OP_SECRET_KEY", lambda: "A3-" + r(AU, 6) + "-" + r(AU, 6) + "-" + r(AU, 5) + "-" + r(AU, 5) + "-" + r(AU, 5) + "-" + r(AU, 5), False),
    ("cloudflare-api-token", "CLOUDFLARE_API_TOKEN", fmt((URL, 40)), True),
    ("cloudflare-global-key", "CLOUDFLARE_API_KEY", fmt((HEX, 37)), True),
    ("cloudflare-origin-ca", "CF_ORIGIN_CA_KEY", fmt("v1.0-", (HEX, 24), "-", (HEX, 146)), False),
    ("facebook-access", "FACEBOOK_ACCESS_TOKEN", fmt("EAAC", (AN, 160)), False),
    ("facebook-page", "FB_PAGE_TOKEN", fmt("EAAG", (AN, 180)), False),
    ("facebook-app-secret", "FACEBOOK_APP_SECRET", fmt((HEX, 32)), True),
    ("instagram", "INSTAGRAM_ACCESS_TOKEN", fmt("IGQV", (URL, 180)), False),
    ("sonar-user", "SONAR_TOKEN", fmt("squ_", (HEX, 40)), False),
    ("sonar-project", "SONAR_TOKEN", fmt("sqp_", (HEX, 40)), False),
    ("sonar-legacy", "SONAR_LOGIN", fmt((HEX, 40)), True),
    ("snyk", "SNYK_TOKEN", uuid, True),
    ("sourcegraph", "SRC_ACCESS_TOKEN", fmt("sgp_", (HEX, 16), "_", (HEX, 40)), False),
    ("sourcegraph-legacy", "SRC_ACCESS_TOKEN", fmt("sgp_", (HEX, 40)), False),
    ("vercel", "VERCEL_TOKEN", fmt((AN, 24)), True),
    ("flyio", "FLY_API_TOKEN", lambda: "FlyV1 fm2_" + r(B64, 300) + "==,fm2_" + r(B64, 200), False),
    ("flyio-org", "FLY_ACCESS_TOKEN", fmt("fo1_", (URL, 43)), False),
    ("sumologic-id", "SUMO_ACCESS_ID", fmt("su", (AN, 12)), True),
    ("sumologic-key", "SUMOLOGIC_ACCESS_KEY", fmt((AN, 64)), True),
    ("grafana-cloud", "GRAFANA_CLOUD_TOKEN", fmt("glc_", (B64, 120), "=="), False),
    ("grafana-sa", "GRAFANA_SERVICE_ACCOUNT_TOKEN", fmt("glsa_", (AN, 32), "_", (HEX, 8)), False),
    ("grafana-api", "GRAFANA_API_KEY", lambda: "eyJrIjoi" + r(AN, 80) + "=", False),
    ("heroku", "HEROKU_API_KEY", uuid, True),
    ("heroku-v2", "HEROKU_API_KEY", fmt("HRKU-AA", (URL, 58)), False),
    ("hubspot", "HUBSPOT_API_KEY", uuid, True),
    ("hubspot-pat", "HUBSPOT_ACCESS_TOKEN", lambda: "pat-na1-" + uuid(), False),
    ("messagebird", "MESSAGEBIRD_API_KEY", fmt((AN, 25)), True),
    ("sentry-org", "SENTRY_AUTH_TOKEN", lambda: "sntrys_" + b64url(json.dumps({"iat": 1700000000.1, "url": "https://sentry.io", "region_url": "https://us.sentry.io", "org": r(an, 8)}).encode()) + "_" + r(AN, 43), False),
    ("sentry-user", "SENTRY_AUTH_TOKEN", fmt("sntryu_", (HEX, 64)), False),
    ("sentry-legacy", "SENTRY_AUTH_TOKEN", fmt((HEX, 64)), True),
    ("ibm-cloud", "IBM_CLOUD_API_KEY", fmt((URL, 44)), True),
    ("ibm-cos-hmac", "IBM_COS_SECRET_ACCESS_KEY", fmt((HEX, 48)), True),
    ("sidekiq", "BUNDLE_ENTERPRISE__CONTRIBSYS__COM", fmt((HEX, 8), ":", (HEX, 8)), False),
    ("sidekiq-gems", "BUNDLE_GEMS__CONTRIBSYS__COM", fmt((HEX, 8), ":", (HEX, 8)), False),
    ("atlassian", "JIRA_API_TOKEN", fmt("ATATT3xFfGF0", (URL, 170), "=", (HEX, 8)), False),
    ("atlassian-legacy", "CONFLUENCE_API_TOKEN", fmt((AN, 24)), True),
    ("bitbucket-app-password", "BITBUCKET_APP_PASSWORD", fmt("ATBB", (AN, 32)), False),
    ("asana", "ASANA_ACCESS_TOKEN", fmt("2/", (DG, 16), "/", (DG, 16), ":", (HEX, 32)), False),
    ("airtable", "AIRTABLE_API_KEY", fmt("pat", (AN, 14), ".", (HEX, 64)), False),
    ("clickup", "CLICKUP_API_TOKEN", fmt("pk_", (DG, 8), "_", (AU, 32)), False),
    ("figma", "FIGMA_TOKEN", fmt("figd_", (URL, 40)), False),
    ("contentful", "CONTENTFUL_MANAGEMENT_TOKEN", fmt("CFPAT-", (URL, 43)), False),
    ("postman", "POSTMAN_API_KEY", fmt("PMAK-", (HEX, 24), "-", (HEX, 34)), False),
    ("pulumi", "PULUMI_ACCESS_TOKEN", fmt("pul-", (HEX, 40)), False),
    ("prefect", "PREFECT_API_KEY", fmt("pnu_", (AN, 36)), False),
    ("readme", "README_API_KEY", fmt("rdme_", (an, 70)), False),
    ("typeform", "TYPEFORM_TOKEN", fmt("tfp_", (URL, 44), "_", (URL, 14)), False),
    ("planetscale", "PLANETSCALE_PASSWORD", fmt("pscale_pw_", (URL, 43)), False),
    ("planetscale-token", "PLANETSCALE_TOKEN", fmt("pscale_tkn_", (URL, 43)), False),
    ("supabase", "SUPABASE_ACCESS_TOKEN", fmt("sbp_", (HEX, 40)), False),
    ("supabase-secret", "SUPABASE_SECRET_KEY", fmt("sb_secret_", (URL, 31)), False),
    ("netlify", "NETLIFY_AUTH_TOKEN", fmt("nfp_", (AN, 36)), False),
    ("netlify-legacy", "NETLIFY_AUTH_TOKEN", fmt((URL, 43)), True),
    ("render", "RENDER_API_KEY", fmt("rnd_", (AN, 32)), False),
    ("deno-deploy", "DENO_DEPLOY_TOKEN", fmt("ddp_", (AN, 36)), False),
    ("circleci", "CIRCLE_TOKEN", fmt("CCIPAT_", (AN, 22), "_", (HEX, 40)), False),
    ("buildkite", "BUILDKITE_API_TOKEN", fmt("bkua_", (HEX, 40)), False),
    ("travis", "TRAVIS_API_TOKEN", fmt((URL, 22)), True),
    ("codecov", "CODECOV_TOKEN", uuid, True),
    ("octopus", "OCTOPUS_API_KEY", fmt("API-", (AU, 26)), False),
    ("harness", "HARNESS_API_KEY", fmt("pat.", (URL, 22), ".", (AN, 24), ".", (AN, 20)), False),
    ("newrelic-user", "NEW_RELIC_API_KEY", fmt("NRAK-", (AU, 27)), False),
    ("newrelic-license", "NEW_RELIC_LICENSE_KEY", fmt((HEX, 36), "NRAL"), False),
    ("newrelic-insert", "NEW_RELIC_INSERT_KEY", fmt("NRII-", (URL, 32)), False),
    ("datadog-api", "DD_API_KEY", fmt((HEX, 32)), True),
    ("datadog-app", "DD_APP_KEY", fmt((HEX, 40)), True),
    ("honeycomb", "HONEYCOMB_API_KEY", fmt((AN, 22)), True),
    ("rollbar", "ROLLBAR_ACCESS_TOKEN", fmt((HEX, 32)), True),
    ("bugsnag", "BUGSNAG_API_KEY", fmt((HEX, 32)), True),
    ("pagerduty", "PAGERDUTY_TOKEN", fmt("u+", (URL, 18)), True),
    ("opsgenie", "OPSGENIE_API_KEY", uuid, True),
    ("splunk-hec", "SPLUNK_HEC_TOKEN", lambda: uuid().upper(), True),
    ("launchdarkly", "LAUNCHDARKLY_SDK_KEY", lambda: "sdk-" + uuid(), False),
    ("launchdarkly-api", "LD_API_KEY", lambda: "api-" + uuid(), False),
    ("algolia", "ALGOLIA_ADMIN_KEY", fmt((HEX, 32)), True),
    ("mapbox-secret", "MAPBOX_SECRET_TOKEN", lambda: "sk." + b64url(json.dumps({"u": r(an, 8), "a": r(an, 25)}).encode()) + "." + r(URL, 22), False),
    ("dropbox", "DROPBOX_ACCESS_TOKEN", fmt("sl.", (URL, 135)), False),
    ("dropbox-long", "DROPBOX_TOKEN", fmt((an, 11), "AAAAAAAAAA", (URL, 43)), False),
    ("okta", "OKTA_API_TOKEN", fmt("00", (URL, 40)), True),
    ("auth0", "AUTH0_CLIENT_SECRET", fmt((URL, 64)), True),
    ("gcp-api", "GOOGLE_API_KEY", fmt("AIza", (URL, 35)), False),
    ("gcp-oauth-secret", "GOOGLE_CLIENT_SECRET", fmt("GOCSPX-", (URL, 28)), False),
    ("gcp-refresh", "GOOGLE_REFRESH_TOKEN", fmt("1//0", (URL, 99)), False),
    ("gcp-access", "GOOGLE_ACCESS_TOKEN", fmt("ya29.a0", (URL, 150)), False),
    ("firebase-fcm", "FCM_SERVER_KEY", fmt("AAAA", (URL, 7), ":APA91b", (URL, 134)), False),
    ("azure-client-secret", "AZURE_CLIENT_SECRET", fmt((URL, 3), "8Q~", (URL, 34)), False),
    ("azure-storage", "AZURE_STORAGE_CONNECTION_STRING", lambda: f"DefaultEndpointsProtocol=https;AccountName={r(an, 10)};AccountKey={r(B64, 86)}==;EndpointSuffix=core.windows.net", False),
    ("azure-devops", "AZURE_DEVOPS_PAT", fmt((B32.lower().replace('1', ''), 52)), True),
    ("azure-app-config", "APPCONFIG_CONNECTION_STRING", lambda: f"Endpoint=https://{r(an, 8)}.azconfig.io;Id={r(URL, 4)}-l0-s0:{r(AN, 20)};Secret={r(B64, 43)}=", False),
    ("alibaba", "ALIBABA_CLOUD_ACCESS_KEY_ID", fmt("LTAI", (AN, 20)), False),
    ("tencent", "TENCENTCLOUD_SECRET_ID", fmt("AKID", (AN, 32)), False),
    ("yandex-iam", "YC_TOKEN", fmt("t1.", (URL, 60), ".", (URL, 86)), False),
    ("yandex-api", "YANDEX_API_KEY", fmt("AQVN", (URL, 36)), False),
    ("scaleway", "SCW_ACCESS_KEY", fmt("SCW", (AU, 17)), False),
    ("linode", "LINODE_TOKEN", fmt((HEX, 64)), True),
    ("hetzner", "HCLOUD_TOKEN", fmt((AN, 64)), True),
    ("vultr", "VULTR_API_KEY", fmt((AU, 36)), True),
    ("adobe", "ADOBE_CLIENT_SECRET", fmt("p8e-", (AN, 32)), False),
    ("age", "SOPS_AGE_KEY", fmt("AGE-SECRET-KEY-1", ("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)), False),
    ("infracost", "INFRACOST_API_KEY", fmt("ico-", (AN, 32)), False),
    ("frameio", "FRAMEIO_TOKEN", fmt("fio-u-", (URL, 64)), False),
    ("easypost", "EASYPOST_API_KEY", fmt("EZAK", (an, 54)), False),
    ("duffel", "DUFFEL_ACCESS_TOKEN", fmt("duffel_live_", (URL, 43)), False),
    ("flutterwave", "FLW_SECRET_KEY", fmt("FLWSECK-", (HEX, 32), "-X"), False),
    ("shippo", "SHIPPO_API_TOKEN", fmt("shippo_live_", (HEX, 40)), False),
    ("razorpay", "RAZORPAY_KEY_ID", fmt("rzp_live_", (AN, 14)), False),
    ("paystack", "PAYSTACK_SECRET_KEY", fmt("sk_live_", (HEX, 40)), False),
    ("braintree", "BRAINTREE_ACCESS_TOKEN", fmt("access_token$production$", (an, 16), "$", (HEX, 32)), False),
    ("plaid", "PLAID_ACCESS_TOKEN", lambda: "access-production-" + uuid(), False),
    ("gocardless", "GOCARDLESS_ACCESS_TOKEN", fmt("live_", (URL, 40)), False),
    ("coinbase", "COINBASE_API_SECRET", fmt((AN, 32)), True),
    ("binance", "BINANCE_SECRET_KEY", fmt((AN, 64)), True),
    ("intercom", "INTERCOM_ACCESS_TOKEN", fmt("dG9rOj", (AN, 54), "="), False),
    ("zendesk", "ZENDESK_API_TOKEN", fmt((AN, 40)), True),
    ("freshdesk", "FRESHDESK_API_KEY", fmt((AN, 20)), True),
    ("telnyx", "TELNYX_API_KEY", fmt("KEY", (HEXU, 32), "_", (AN, 22)), False),
    ("plivo", "PLIVO_AUTH_TOKEN", fmt((AN, 40)), True),
    ("vonage", "NEXMO_API_SECRET", fmt((AN, 16)), True),
    ("pusher", "PUSHER_APP_SECRET", fmt((HEX, 20)), True),
    ("ably", "ABLY_API_KEY", fmt((URL, 6), ".", (URL, 6), ":", (URL, 43)), True),
    ("lokalise", "LOKALISE_API_TOKEN", fmt((HEX, 40)), True),
    ("shodan", "SHODAN_API_KEY", fmt((AN, 32)), True),
    ("virustotal", "VT_API_KEY", fmt((HEX, 64)), True),
    ("openweather", "OPENWEATHERMAP_API_KEY", fmt((HEX, 32)), True),
    ("etherscan", "ETHERSCAN_API_KEY", fmt((AU, 34)), True),
    ("infura", "INFURA_PROJECT_SECRET", fmt((HEX, 32)), True),
    ("wandb", "WANDB_API_KEY", fmt((HEX, 40)), True),
    ("kaggle", "KAGGLE_KEY", fmt((HEX, 32)), True),
    ("elevenlabs", "ELEVENLABS_API_KEY", fmt("sk_", (HEX, 48)), False),
    ("fireworks", "FIREWORKS_API_KEY", fmt("fw_", (AN, 24)), False),
    ("langfuse", "LANGFUSE_SECRET_KEY", lambda: "sk-lf-" + uuid(), False),
    ("docker-swarm", "SWARM_TOKEN", fmt("SWMTKN-1-", (an, 50), "-", (an, 25)), False),
    ("kubeadm-bootstrap", "KUBEADM_TOKEN", fmt((an, 6), ".", (an, 16)), True),
    ("openshift", "OPENSHIFT_TOKEN", fmt("sha256~", (URL, 43)), False),
    ("salesforce", "SFDX_ACCESS_TOKEN", fmt("00D", (AN, 15), "!", (AN + ".", 96)), False),
    ("twitter-bearer", "TWITTER_BEARER_TOKEN", fmt("AAAAAAAAAAAAAAAAAAAAA", (AN, 20), "%3D", (AN, 50)), False),
    ("twitch", "TWITCH_CLIENT_SECRET", fmt((an, 30)), True),
    ("spotify", "SPOTIFY_CLIENT_SECRET", fmt((HEX, 32)), True),
    ("pinterest", "PINTEREST_ACCESS_TOKEN", fmt("pina_", (AU, 96)), False),
    ("zoom", "ZOOM_CLIENT_SECRET", fmt((AN, 32)), True),
    ("laravel", "APP_KEY", lambda: "base64:" + base64.b64encode(bytes(R.randrange(256) for _ in range(32))).decode(), False),
    ("bitcoin-wif", "BTC_PRIVATE_KEY", fmt(R.choice("KL"), (B58, 51)), False),
    ("bip32-xprv", "WALLET_XPRV", fmt("xprv9s21ZrQH143K", (B58, 95)), False),
    ("ethereum-key", "ETH_PRIVATE_KEY", fmt("0x", (HEX, 64)), True),
    ("woocommerce", "WC_CONSUMER_SECRET", fmt("cs_", (HEX, 40)), False),
    ("cloudinary", "CLOUDINARY_URL", lambda: f"cloudinary://{r(DG, 15)}:{r(URL, 27)}@{r(an, 9)}", False),
    ("akamai", "AKAMAI_CLIENT_SECRET", fmt((B64, 43), "="), True),
    ("segment", "SEGMENT_PUBLIC_API_TOKEN", fmt("sgp_", (AN, 64)), False),
    ("jwt", "ACCESS_TOKEN", jwt, False),
    ("jwt-rs256", "ID_TOKEN", lambda: jwt(header={"alg": "RS256", "kid": r(HEX, 16), "typ": "JWT"}), False),
    ("jwt-no-typ", "SERVICE_JWT", lambda: jwt(header={"alg": "ES256"}), False),
]


class Corpus:
    def __init__(self, out):
        self.out = out
        self.labels = []
        self.n = 0

    def write(self, rel, lines, marks, binary=None):
        """Writes lines (or bytes) to cases/REL. marks: (line_index, last_index, label, class,
        provider) with 0-based line indices."""
        path = os.path.join(self.out, "cases", rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(binary if binary is not None else ("\n".join(lines) + "\n").encode())
        for first, last, label, cls, prov in marks:
            self.labels.append((f"cases/{rel}", first + 1, last + 1, label, cls, prov))
        self.n += 1


# File shapes: (extension, render(key, value) -> (lines, index of the line holding the value)).
def lower_key(k):
    return k.lower()


def camel(k):
    parts = k.lower().split("_")
    return parts[0] + "".join(p.title() for p in parts[1:])


SHAPES = {
    "env": lambda k, v: (["# service settings", "NODE_ENV=production", "PORT=8080", f"{k}={v}", "LOG_LEVEL=info"], 3),
    "sh": lambda k, v: (["#!/bin/sh", "set -eu", f'export {k}="{v}"', 'exec /usr/local/bin/app "$@"'], 2),
    "yaml": lambda k, v: (["service:", "  name: billing", "  replicas: 2", "  env:", f"    {lower_key(k)}: {v}", "    region: eu-west-1"], 4),
    "yaml-quoted": lambda k, v: (["env:", "  - name: LOG_LEVEL", "    value: info", f"  - name: {k}", f'    value: "{v}"'], 4),
    "json": lambda k, v: (["{", '  "name": "billing",', f'  "{camel(k)}": "{v}",', '  "timeout": 30', "}"], 2),
    "ini": lambda k, v: (["[default]", "region = eu-west-1", f"{lower_key(k)} = {v}", "retries = 3"], 2),
    "properties": lambda k, v: (["app.name=billing", "server.port=8080", f"app.{camel(k)}={v}"], 2),
    "toml": lambda k, v: (["[service]", 'name = "billing"', f'{lower_key(k)} = "{v}"'], 2),
    "py": lambda k, v: (["import os", "", f'{k} = "{v}"', "", "def client():", f"    return Client({lower_key(k)}={k})"], 2),
    "js": lambda k, v: (["'use strict';", f"const {camel(k)} = '{v}';", f"module.exports = {{ {camel(k)} }};"], 1),
    "go": lambda k, v: (["package config", "", "func Load() Config {", f'\treturn Config{{Token: GetEnvOrDefault("{k}", "{v}")}}', "}"], 3),
    "xml": lambda k, v: (['<?xml version="1.0"?>', "<configuration>", "  <appSettings>", f'    <add key="{camel(k)}" value="{v}" />', "  </appSettings>", "</configuration>"], 3),
    "tf": lambda k, v: (['provider "acme" {', '  region = "eu-west-1"', f'  {lower_key(k)} = "{v}"', "}"], 2),
    "compose": lambda k, v: (["services:", "  app:", "    image: acme/app:1.4", "    environment:", f"      - {k}={v}"], 4),
    "log": lambda k, v: (["2024-05-02T10:00:01Z INFO starting worker", f"2024-05-02T10:00:02Z DEBUG config loaded {k.lower()}={v}", "2024-05-02T10:00:03Z INFO ready"], 1),
}
EXT = {"env": ".env", "sh": "run.sh", "yaml": "values.yaml", "yaml-quoted": "deploy.yaml", "json": "config.json", "ini": "settings.ini",
       "properties": "application.properties", "toml": "config.toml", "py": "settings.py", "js": "config.js", "go": "config.go",
       "xml": "app.config", "tf": "main.tf", "compose": "compose.override.yml", "log": "worker.log"}
# Shapes where a bare distinctive token also shows up without its variable: URLs, commands.
SHAPE_NAMES = list(SHAPES)


def providers(c):
    for i, (prov, var, gen, _kw) in enumerate(PROVIDERS):
        for j in range(3):
            shape = SHAPE_NAMES[(i * 3 + j) % len(SHAPE_NAMES)]
            lines, at = SHAPES[shape](var, gen())
            c.write(f"providers/{prov}/{j}/{EXT[shape]}", lines, [(at, at, "secret", "provider", prov)])
        # one filler fixture per distinctive provider, as scanners' own tests have them
        tok = gen()
        head = next((k for k in range(len(tok)) if tok[k] in string.digits + string.ascii_letters and k > 3), 4)
        if not _kw and len(tok) > 16:
            body = "A" * (len(tok) - head) if i % 2 else (string.ascii_letters + string.digits) * 4
            filler = tok[:head] + body[: len(tok) - head]
            lines, at = SHAPES["env"](var, filler)
            c.write(f"filler/{prov}/.env", lines, [(at, at, "filler", "filler", prov)])


def random_password():
    return r(UP, 2) + r(LO, 4) + r(DG, 3) + R.choice("!#%&*+=?@^~") + r(AN, 4)


def generic(c):
    """Passwords and tokens found by context only: the generic-assignment class."""
    cases = []
    for n in range(6):
        p = random_password()
        t = r(AN, 32)
        cases += [
            ("yaml", ["database:", "  host: db.internal", f"  password: {p}"], 2),
            ("yaml", ["smtp:", f'  password: "{r(LO, 5)} {r(LO, 6)} {r(DG, 4)}{R.choice("!?#")}"'], 1),
            ("json", ["{", f'  "user_auth": "{t}",', '  "retries": 3', "}"], 1),
            ("json", ["{", '  "db": {', f'    "password": "{p}"', "  }", "}"], 2),
            ("ini", ["[client]", "user = app", f"password = {p}"], 2),
            ("properties", ["spring.datasource.url=jdbc:postgresql://db/app", f"spring.datasource.password={p}"], 1),
            ("xml", ["<server>", "  <username>deploy</username>", f"  <password>{p}</password>", "</server>"], 2),
            ("xml-attr", ['<connection host="db" user="app"', f'  password="{p}" />'], 1),
            ("go", ["func init() {", f'\tapiToken = GetEnvOrDefault("api_token", "{t}")', "}"], 1),
            ("py", [f'API_SECRET = os.environ.get("API_SECRET", "{t}")'], 0),
            ("py", ["def connect():", f'    return psycopg2.connect(host="db", password="{p}")'], 1),
            ("js", ["const opts = {", f"  auth: {{ user: 'app', pass: '{p}' }},", "};"], 1),
            ("sh-curl", ["#!/bin/sh", f"curl -fsS -u deploy:{p[:6]}$1{p[6:]} https://repo.acme.internal/upload -T app.tgz"], 1),
            ("sh-curl", ["#!/bin/sh", f'curl --user "ci:{p}" https://nexus.acme.internal/repository/raw/'], 1),
            ("sh-curl", ["#!/bin/sh", f"curl -s https://api.acme.internal/v2/deploy -H 'X-Api-Key: {t}'"], 1),
            ("sh-cont", ["#!/bin/sh", "acme-cli deploy \\", f"  --api-key={t} \\", "  --region eu-west-1"], 2),
            ("sh-cont", ["#!/bin/sh", "docker run --rm \\", f"  -e DB_PASSWORD={p} \\", "  acme/migrate:2"], 2),
            ("sh-cont", ["#!/bin/sh", "./manage.py createsuperuser \\", f"  --password '{p}' \\", "  --noinput"], 2),
            ("env", [f"SECRET_KEY={r(AN + '!@#%^&*(-_=+)', 50)}"], 0),
            ("env", [f'ADMIN_PASSWORD="{p}"'], 0),
            ("toml", ["[registry]", f'token = "{t}"'], 1),
            ("tf", ['resource "acme_user" "ci" {', f'  password = "{p}"', "}"], 1),
            ("php", ["<?php", f"define('DB_PASSWORD', '{p}');"], 1),
            ("rb", [f"config.secret_key_base = '{r(HEX, 128)}'"], 0),
            ("cs", [f'var conn = "Server=db;Database=app;User Id=sa;Password={p};";'], 0),
            ("java", [f'private static final String API_TOKEN = "{t}";'], 0),
        ]
    names = {"yaml": "app.yaml", "json": "settings.json", "ini": "client.cnf", "properties": "application.properties", "xml": "server.xml",
             "xml-attr": "datasource.xml", "go": "main.go", "py": "app.py", "js": "db.js", "sh-curl": "upload.sh", "sh-cont": "deploy.sh",
             "env": "prod.env", "toml": "registry.toml", "tf": "users.tf", "php": "wp-config.php", "rb": "secrets.rb", "cs": "Db.cs", "java": "Api.java"}
    for n, (shape, lines, at) in enumerate(cases):
        c.write(f"generic/{n:03d}/{names[shape]}", lines, [(at, at, "secret", "generic", shape)])


def pem(kind, n=12):
    return [f"-----BEGIN {kind}-----"] + [r(B64, 64) for _ in range(n)] + [r(B64, 20) + "==", f"-----END {kind}-----"]


def keys_and_manifests(c):
    for i, kind in enumerate(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "DSA PRIVATE KEY"]):
        for j in range(2):
            body = pem(kind)
            if kind == "OPENSSH PRIVATE KEY":
                body[1] = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAABlwAAAAdzc2gtcn"
            c.write(f"keys/{i}{j}/server.key", body, [(0, len(body) - 1, "secret", "private-key", kind)])
    # a key inlined in JSON
    body = "\\n".join(pem("PRIVATE KEY"))
    c.write("keys/inline/service.json", ["{", f'  "tls_key": "{body}"', "}"], [(1, 1, "secret", "private-key", "inline")])
    # PKCS#12: real DER structure (SEQUENCE, version 3) is a key store; a git-lfs pointer is not
    der = bytes([0x30, 0x82, 0x0A, 0x3B, 0x02, 0x01, 0x03, 0x30, 0x82, 0x0A, 0x01]) + bytes(R.randrange(256) for _ in range(600))
    c.write("keys/p12/client.p12", [], [(0, 0, "secret", "keystore", "pkcs12")], binary=der)
    c.write("keys/p12-lfs/client.p12", ["version https://git-lfs.github.com/spec/v1", f"oid sha256:{r(HEX, 64)}", "size 2573"], [(0, 0, "clean", "keystore", "lfs-pointer")])
    # Kubernetes Secret manifests
    for i in range(8):
        pw = random_password()
        tok = r(AN, 40)
        lines = ["apiVersion: v1", "kind: Secret", "metadata:", f"  name: app-{i}", "  namespace: prod", "type: Opaque", "data:",
                 f"  DB_PASSWORD: {base64.b64encode(pw.encode()).decode()}",
                 f"  API_TOKEN: {base64.b64encode(tok.encode()).decode()}"]
        marks = [(7, 7, "secret", "k8s-secret", "data"), (8, 8, "secret", "k8s-secret", "data")]
        if i % 2:
            lines += ["stringData:", f"  smtp-password: {random_password()}"]
            marks.append((10, 10, "secret", "k8s-secret", "stringData"))
        c.write(f"k8s/{i}/secret.yaml", lines, marks)
    # a Secret in a multi-document file, after a Deployment
    lines = ["apiVersion: apps/v1", "kind: Deployment", "metadata:", "  name: web", "---", "apiVersion: v1", "kind: Secret", "metadata:",
             "  name: web-tls", "type: kubernetes.io/basic-auth", "stringData:", "  username: admin", f"  password: {random_password()}"]
    c.write("k8s/multi/all.yaml", lines, [(12, 12, "secret", "k8s-secret", "stringData")])
    # .npmrc forms, in files that are not named .npmrc (Dockerfile RUN, CI scripts)
    for i in range(4):
        tok = "npm_" + r(AN, 36) if i % 2 else uuid()
        lines = ["#!/bin/sh", f'echo "//registry.npmjs.org/:_authToken={tok}" > ~/.npmrc', "npm publish"]
        c.write(f"npmrc/{i}/publish.sh", lines, [(1, 1, "secret", "npmrc", "npm")])
    c.write("npmrc/yarnrc/.yarnrc.yml", ["npmRegistryServer: https://npm.acme.internal", f'npmAuthToken: "{uuid()}"'], [(1, 1, "secret", "npmrc", "yarn")])


def negatives(c):
    """Look-alikes. None of these is a credential; each must not be reported."""
    cases = []
    for i in range(5):
        cases += [
            ("env", ["DB_PASSWORD=REPLACE_WITH_PASSWORD", "API_KEY=<your-api-key>", "SECRET_KEY=${SECRET_KEY}", "TOKEN=TODO"]),
            ("sh", ["#!/bin/sh", "curl -u user:pass https://example.com/api", "curl -u xxx:yyy https://example.com", "curl -u <user:password> https://host/", "curl -u \"$USER:$PASS\" https://host/"]),
            ("yaml", ["auth:", "  password: '####'", "  secret: '!!!!!!!!'", "  token: '********'", "  api_key: '...'"]),
            ("yaml", ["firebase:", f'  apiKey: "AIza{r(URL, 35)}"', '  authDomain: "acme-web.firebaseapp.com"', '  projectId: "acme-web"', f'  appId: "1:{r(DG, 12)}:web:{r(HEX, 22)}"']),
            ("js", ["const firebaseConfig = {", f'  apiKey: "AIza{r(URL, 35)}",', '  authDomain: "shop-12.firebaseapp.com",', '  storageBucket: "shop-12.appspot.com",', "};"]),
            ("gradle", ["dependencies {", "    implementation 'io.jsonwebtoken:jjwt-api:0.11.2'", "    runtimeOnly 'io.jsonwebtoken:jjwt-jackson:0.11.2'", "}"]),
            ("txt", ["lib/jjwt-jackson-0.11.2.jar", "lib/jjwt-impl-0.11.5.jar", "lib/spring-security-oauth2-jose-5.8.1.jar", "lib/token-provider-1.2.3.jar"]),
            ("json", ["{", f'  "integrity": "sha512-{base64.b64encode(bytes(R.randrange(256) for _ in range(64))).decode()}",', f'  "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz",', f'  "commit": "{r(HEX, 40)}"', "}"]),
            ("yaml", ["image:", f"  digest: sha256:{r(HEX, 64)}", f"  request_id: {uuid()}", f"  trace_id: {r(HEX, 32)}"]),
            ("env", [f"GOOGLE_CLIENT_ID={r(DG, 12)}-{r(an, 32)}.apps.googleusercontent.com", f"STRIPE_PUBLISHABLE_KEY=pk_live_{r(AN, 24)}", f"MAPBOX_TOKEN=pk.{b64url(json.dumps({'u': 'acme', 'a': r(an, 25)}).encode())}.{r(URL, 22)}"]),
            ("txt", [f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{r(B64, 43)} ci@build", f"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ{r(B64, 300)} deploy@host"]),
            ("pem", ["-----BEGIN CERTIFICATE-----"] + [r(B64, 64) for _ in range(8)] + ["-----END CERTIFICATE-----", "-----BEGIN PUBLIC KEY-----", r(B64, 64), r(B64, 40), "-----END PUBLIC KEY-----"]),
            ("env", [f"GITHUB_TOKEN=ghp_{r(AN, 35)}", f"NPM_TOKEN=npm_{r(AN, 30)}", f"SLACK_TOKEN=xoxb-{r(DG, 4)}-{r(AN, 5)}"]),
            ("env", [f"ACCESS_TOKEN=eyJ{r(URL, 30)}.eyJ{r(URL, 40)}.{r(URL, 43)}"]),
            ("py", ["password = getpass.getpass()", "if password != confirm_password:", "    raise ValueError('password mismatch')", "hashed = bcrypt.hashpw(password.encode(), salt)", "token_type = 'bearer'", "max_tokens = 4096"]),
            ("html", ['<img src="data:image/png;base64,' + base64.b64encode(bytes(R.randrange(256) for _ in range(90))).decode() + '">']),
            ("yaml", ["auth:", "  username: admin", "  password: ${ADMIN_PASSWORD:?required}", "  token: \"{{ vault_token }}\"", "  secretRef: app-credentials"]),
            ("log", [f"2024-05-02T10:00:02Z INFO session {uuid()} user 4411 logged in", f"2024-05-02T10:00:03Z DEBUG cache key {r(HEX, 40)}"]),
            ("sh", ["#!/bin/sh", "mysql -u root -p", "docker login -u ci --password-stdin < /run/secrets/registry", "vault login -method=oidc"]),
            ("xml", ["<settings>", "  <server>", "    <password>${env.REPO_PASSWORD}</password>", "  </server>", "</settings>"]),
            ("env", [f"AWS_ACCOUNT_ID={r(DG, 12)}", f"TWILIO_ACCOUNT_SID=AC{r(HEX, 32)}", f"SENTRY_DSN=https://{r(HEX, 32)}@o{r(DG, 6)}.ingest.sentry.io/{r(DG, 7)}"]),
        ]
    names = {"env": "sample.conf", "sh": "check.sh", "yaml": "config.yaml", "js": "firebase.js", "gradle": "build.gradle", "txt": "manifest.list",
             "json": "lockish.json", "py": "auth.py", "html": "index.html", "log": "app.log", "xml": "settings.xml", "pem": "chain.crt"}
    for n, (shape, lines) in enumerate(cases):
        c.write(f"clean/{n:03d}/{names[shape]}", lines, [(k, k, "clean", "clean", shape) for k in range(len(lines)) if lines[k].strip()])


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/rsafe-secrets-corpus"
    if os.path.exists(os.path.join(out, "cases")):
        import shutil
        shutil.rmtree(os.path.join(out, "cases"))
    os.makedirs(out, exist_ok=True)
    c = Corpus(out)
    providers(c)
    generic(c)
    keys_and_manifests(c)
    negatives(c)
    with open(os.path.join(out, "Dockerfile"), "w") as f:
        f.write("FROM scratch\nCOPY cases /srv/app/\n")
    with open(os.path.join(out, "labels.tsv"), "w") as f:
        f.write("path\tfirst_line\tlast_line\tlabel\tclass\tprovider\n")
        for row in c.labels:
            f.write("\t".join(map(str, row)) + "\n")
    kinds = {}
    for row in c.labels:
        kinds[row[3]] = kinds.get(row[3], 0) + 1
    print(f"{c.n} files, {len(PROVIDERS)} provider formats, labels: {kinds}", file=sys.stderr)


if __name__ == "__main__":
    main()
