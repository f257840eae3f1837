/**
 * The demo tenant's workflow and agent: what `npm start` seeds, the README explains, and the tests run. The
 * workflow branches, loops, searches twice at once, asks the model and waits for a person's approval.
 */
export const DEMO_WORKFLOW_NAME = 'policy-review';
export const DEMO_AGENT_NAME = 'handbook-helper';

export const DEMO_WORKFLOW = `# Reviews what the handbook says on some topics and asks a person to sign the summary off.
document:
  dsl: '1.0.0'
  namespace: demo
  name: ${DEMO_WORKFLOW_NAME}
  version: '1.0.0'
  title: Policy review
  summary: Searches the handbook on two topics at once, summarises them and waits for approval
input:
  schema:
    format: json
    document:
      type: object
      required: [topics]
      properties:
        topics: { type: array, items: { type: string }, minItems: 1 }
do:
  - count:
      set:
        topics: \${ .topics }
        several: \${ (.topics | length) > 1 }
  - route:
      switch:
        - several:
            when: \${ .several }
            then: each
        - one:
            then: end
  - each:
      for:
        each: topic
        in: \${ .topics }
      do:
        - note:
            set:
              topics: \${ .topics }
              last: \${ $topic }
  - gather:
      fork:
        branches:
          - first:
              call: jarvis.search
              with:
                query: \${ .topics[0] }
                topK: 2
          - second:
              call: jarvis.search
              with:
                query: \${ .topics[1] }
                topK: 2
  - summary:
      call: jarvis.model
      with:
        instructions: Summarise the passages for a manager in two sentences.
        prompt: '\${ "Passages from the handbook:\\n\\n" + ([.[].passages[].text] | join("\\n\\n")) }'
        strategy: COST
  - approval:
      listen:
        to:
          one:
            with:
              type: jarvis.approval
      timeout:
        after:
          days: 7
  - finish:
      set:
        approved: \${ .data.approved }
        comment: \${ .data.comment }
`;

export const demoAgent = (knowledgeBaseId: string) => `instructions: >-
  You answer colleagues' questions about the Demo Inc. handbook. Search the handbook first and answer from what
  it says.
strategy: COST
tools:
  knowledgeBases: [${knowledgeBaseId}]
maxSteps: 6
tokenBudget: 20000
`;
