// STS GetCallerIdentity through the endpoint given as the first argument, signed with credentials
// from the SDK's default provider chain (environment, container endpoint, IMDS, ...), exactly as an
// application would get them. Prints one JSON line: {Arn, Account, UserId, AccessKeyId}, or
// {error, message} with exit status 1.
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";

const endpoint = process.argv[2];
if (!endpoint) {
  console.error("usage: node sts-get-caller-identity.mjs ENDPOINT");
  process.exit(2);
}
const client = new STSClient({ endpoint, region: process.env.AWS_REGION ?? "us-east-1", maxAttempts: 1 });
try {
  const credentials = await client.config.credentials();
  const identity = await client.send(new GetCallerIdentityCommand({}));
  console.log(JSON.stringify({
    Arn: identity.Arn,
    Account: identity.Account,
    UserId: identity.UserId,
    AccessKeyId: credentials.accessKeyId,
  }));
} catch (err) {
  console.log(JSON.stringify({ error: err.name, message: err.message }));
  process.exitCode = 1;
}
