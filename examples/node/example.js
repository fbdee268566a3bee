// creditmesh from Node with @grpc/grpc-js, on the addresses and PKI of `creditmesh dev`:
//
// 1. an agency files with its regulator (建档): uploads its documents, submits its application;
// 2. the demo agency pushes a credit record to the regional platform;
// 3. a reader verifies a notice of the public register: its inclusion proof against the
//    checkpoint, and the checkpoint's signature against the log's published key.
//
// The contracts are loaded from the project's proto/ at start. Settings come from the
// environment (defaults: `creditmesh dev`'s): CREDITMESH_EXAMPLE_PKI, CREDITMESH_EXAMPLE_NODE,
// CREDITMESH_EXAMPLE_PUBLIC, CREDITMESH_EXAMPLE_AGENCY_CERT and CREDITMESH_EXAMPLE_AGENCY_USCC (the agency that files;
// its certificate is issued with `creditmesh pki issue`, see examples/README.md).

"use strict";

const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTO = path.resolve(__dirname, "..", "..", "proto");
const PKI = process.env.CREDITMESH_EXAMPLE_PKI || "creditmesh-data/pki";
const NODE = process.env.CREDITMESH_EXAMPLE_NODE || "127.0.0.1:7443";
const PUBLIC = process.env.CREDITMESH_EXAMPLE_PUBLIC || "127.0.0.1:8080";
const AGENCY_CERT = process.env.CREDITMESH_EXAMPLE_AGENCY_CERT || "agency-example-node";
const AGENCY_USCC = process.env.CREDITMESH_EXAMPLE_AGENCY_USCC || "91650102MA7XJ002X3";

const definition = protoLoader.loadSync(
  [
    "creditmesh/filing/v1/filing.proto",
    "creditmesh/datapush/v1/datapush.proto",
    "creditmesh/disclosure/v1/disclosure.proto",
  ],
  { includeDirs: [PROTO], keepCase: true, longs: Number, enums: String, defaults: true },
);
const creditmesh = grpc.loadPackageDefinition(definition).creditmesh;

// The listeners' certificates name both 127.0.0.1 and localhost; TLS sends a host name only.
const OPTIONS = { "grpc.ssl_target_name_override": "localhost" };

const pki = (file) => fs.readFileSync(path.join(PKI, file));

/** Mutual TLS to the node listener, as the holder of PKI/name.pem. */
function nodeCredentials(name) {
  return grpc.credentials.createSsl(pki("ca.pem"), pki(`${name}.key`), pki(`${name}.pem`));
}

/** Server TLS to the public listener, no certificate: anyone. */
function publicCredentials() {
  return grpc.credentials.createSsl(pki("ca.pem"));
}

const unary = (client, method, request) =>
  new Promise((resolve, reject) =>
    client[method](request, (error, answer) => (error ? reject(error) : resolve(answer))),
  );

async function fileApplication() {
  const filing = new creditmesh.filing.v1.FilingService(NODE, nodeCredentials(AGENCY_CERT), OPTIONS);
  const upload = (kind, title) =>
    new Promise((resolve, reject) => {
      const bytes = Buffer.from(`%PDF-1.7\n% ${AGENCY_USCC}: ${title}\n`);
      const call = filing.UploadDocument((error, answer) =>
        error ? reject(error) : resolve({ sha256: answer.document.sha256 }),
      );
      call.write({ metadata: { kind, file_name: `${title}.pdf`, size_bytes: bytes.length } });
      call.write({ chunk: bytes });
      call.end();
    });
  const form = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "application.json")));
  Object.assign(form, { uscc: AGENCY_USCC, registered_division: AGENCY_USCC.slice(2, 8) });
  const request = {
    request_id: `example-${AGENCY_USCC}`,
    form,
    application_form_document: await upload("DOCUMENT_KIND_APPLICATION_FORM", "application form"),
    business_licence: await upload("DOCUMENT_KIND_BUSINESS_LICENCE", "business licence"),
    articles_of_association: await upload("DOCUMENT_KIND_ARTICLES_OF_ASSOCIATION", "articles"),
    senior_management_register: await upload("DOCUMENT_KIND_SENIOR_MANAGEMENT_REGISTER", "managers"),
    technical_staff_register: await upload("DOCUMENT_KIND_TECHNICAL_STAFF_REGISTER", "staff"),
    annual_credit_service_report: await upload("DOCUMENT_KIND_ANNUAL_CREDIT_SERVICE_REPORT", "report"),
    credit_commitment: {
      letter: await upload("DOCUMENT_KIND_CREDIT_COMMITMENT_LETTER", "commitment"),
      signed_by_legal_representative: true,
      sealed: true,
    },
    fee_schedule: await upload("DOCUMENT_KIND_FEE_SCHEDULE", "fee schedule"),
    model_documents: [await upload("DOCUMENT_KIND_MODEL_DOCUMENT", "model contract")],
  };
  const { filing: filed } = await unary(filing, "SubmitFiling", request);
  console.log(
    `filed: ${filed.filing_id} ${filed.status}, reviewed by ${filed.reviewing_tenant}` +
      ` by ${filed.review_deadline.due_date}`,
  );
  filing.close();
}

function pushRecord() {
  const push = new creditmesh.datapush.v1.DataPushService(NODE, nodeCredentials("agency"), OPTIONS);
  const content = { amount_due: 95, due_on: "2026-11-25", days_overdue: 6 };
  return new Promise((resolve, reject) => {
    const stream = push.PushRecords();
    stream.on("data", (ack) => {
      if (ack.result === "PUSH_RESULT_REJECTED") {
        reject(new Error(`pushed: ${ack.record_key} rejected: ${ack.error}`));
      } else {
        console.log(`pushed: ${ack.record_key} ${ack.result}, version ${ack.version}`);
      }
    });
    stream.on("error", reject);
    stream.on("end", () => {
      push.close();
      resolve();
    });
    stream.write({
      record: {
        record_key: "example-node-1",
        subject_kind: "SUBJECT_KIND_PERSON",
        subject_identifier: "650102198001011234",
        category: "loan-repayment",
        content: Buffer.from(JSON.stringify(content)),
        collected_on: "2026-12-01",
        source: { provider: "Urumqi Commercial Bank", legal_basis: "written consent of 2026-03-02" },
      },
    });
    stream.end();
  });
}

async function verifyNotice(sequence) {
  const register = new creditmesh.disclosure.v1.DisclosureService(PUBLIC, publicCredentials(), OPTIONS);
  const answer = await unary(register, "GetNoticeProof", { sequence });
  register.close();
  const { notice } = answer;
  const sha256 = (...parts) => crypto.createHash("sha256").update(Buffer.concat(parts)).digest();
  const leaf = sha256(Buffer.from([0]), notice.salt, notice.content);
  const { origin, size, root } = checkpointSignedBy(answer.checkpoint, readVkeys());
  if (size !== answer.tree_size) {
    throw new Error(`the checkpoint covers ${size} notices, the proof ${answer.tree_size}`);
  }
  const led = inclusionRoot(leaf, notice.sequence, size, answer.proof);
  if (!led || !led.equals(root)) {
    throw new Error(`notice ${notice.sequence} is not in the signed tree`);
  }
  console.log(`valid: notice ${notice.sequence} is in the tree of ${size} notices signed by ${origin}`);
  console.log(`  ${notice.text}`);
}

/** The log's verifier keys as published beside the PKI: name, key hash, Ed25519 key. */
function readVkeys() {
  return pki("register-log.vkey")
    .toString()
    .split(/\s+/)
    .filter(Boolean)
    .map((line) => {
      const [name, keyHash, ...rest] = line.split("+");
      const raw = Buffer.from(rest.join("+"), "base64").subarray(1);
      // An Ed25519 public key as SPKI DER: the fixed prefix, then the 32 bytes.
      const der = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), raw]);
      const key = crypto.createPublicKey({ key: der, format: "der", type: "spki" });
      return { name, keyHash: Buffer.from(keyHash, "hex"), key };
    });
}

/** The checkpoint's origin, size and root, once a known key's signature verifies (C2SP
 * signed-note and tlog-checkpoint). */
function checkpointSignedBy(note, keys) {
  const split = note.indexOf("\n\n");
  const text = note.slice(0, split + 1);
  for (const line of note.slice(split + 2).split("\n")) {
    if (!line.startsWith("\u2014 ")) continue;
    const [name, blob64] = line.slice(2).split(" ");
    const blob = Buffer.from(blob64, "base64");
    for (const k of keys) {
      if (k.name === name && blob.subarray(0, 4).equals(k.keyHash)) {
        if (!crypto.verify(null, Buffer.from(text), k.key, blob.subarray(4))) {
          throw new Error("the checkpoint's signature does not verify");
        }
        const [origin, size, root] = text.split("\n");
        return { origin, size: Number(size), root: Buffer.from(root, "base64") };
      }
    }
  }
  throw new Error("no signature by the log's key");
}

/** RFC 9162, 2.1.3.2: the root an inclusion proof leads to. */
function inclusionRoot(leaf, index, size, proof) {
  const node = (left, right) =>
    crypto.createHash("sha256").update(Buffer.concat([Buffer.from([1]), left, right])).digest();
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return null;
    if (fn & 1 || fn === sn) {
      r = node(p, r);
      while ((fn & 1) === 0 && fn !== 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = node(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn === 0 ? r : null;
}

async function verifyFirstAndNewest() {
  const register = new creditmesh.disclosure.v1.DisclosureService(PUBLIC, publicCredentials(), OPTIONS);
  const { size } = await unary(register, "GetRegisterHead", {});
  register.close();
  for (const sequence of [...new Set([0, size - 1])].sort((a, b) => a - b)) {
    await verifyNotice(sequence);
  }
}

async function main() {
  await fileApplication();
  await pushRecord();
  await verifyFirstAndNewest();
}

main().catch((error) => {
  console.error(`error: ${error.message}`);
  process.exit(1);
});
