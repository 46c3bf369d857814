// A profile's credentials with the SDK's own ini provider (role_arn, source_profile or
// credential_source, mfa_serial, external_id from AWS_CONFIG_FILE), the MFA code asked through its
// mfaCodeProvider callback, which reads one line of standard input as an application's prompt would.
// Then STS GetCallerIdentity through the endpoint given as the first argument. Prints one JSON line:
// {Arn, Asked}, Asked being the serial numbers the callback was asked for, or {error, message} with
// exit status 1.
import { createInterface } from "node:readline/promises";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { fromIni } from "@aws-sdk/credential-provider-ini";

const [endpoint, profile] = process.argv.slice(2);
if (!endpoint || !profile) {
  console.error("usage: node sts-mfa-profile.mjs ENDPOINT PROFILE");
  process.exit(2);
}
const region = process.env.AWS_REGION ?? "us-east-1";
const asked = [];
const mfaCodeProvider = async (serial) => {
  asked.push(serial);
  const input = createInterface({ input: process.stdin });
  try {
    return (await input.question(`Enter MFA code for ${serial}: `)).trim();
  } finally {
    input.close();
  }
};
const credentials = fromIni({ profile, mfaCodeProvider, clientConfig: { endpoint, region, maxAttempts: 1 } });
const client = new STSClient({ endpoint, region, credentials, maxAttempts: 1 });
try {
  const identity = await client.send(new GetCallerIdentityCommand({}));
  console.log(JSON.stringify({ Arn: identity.Arn, Asked: asked }));
} catch (err) {
  console.log(JSON.stringify({ error: err.name, message: err.message }));
  process.exitCode = 1;
}
