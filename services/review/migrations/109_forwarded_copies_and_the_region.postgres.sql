-- Row security beyond the generic tenant policy: a prefecture writes a region row only as the
-- forwarded copy of its own approval (Art. 10); the severe-dishonesty list is read by all and
-- written from the region's scope alone.
DROP POLICY review_task_tenant ON review_task;
CREATE POLICY review_task_tenant ON review_task
    USING (creditmesh_tenant_visible(tenant))
    WITH CHECK (creditmesh_tenant_visible(tenant) OR (tenant = '650000' AND status = 'forwarded'));
CREATE OR REPLACE FUNCTION creditmesh_region_scope() RETURNS BOOLEAN LANGUAGE sql STABLE AS $$
    SELECT COALESCE(current_setting('creditmesh.tenant', true), '') IN ('', '650000') $$;
ALTER TABLE review_dishonesty ENABLE ROW LEVEL SECURITY;
ALTER TABLE review_dishonesty FORCE ROW LEVEL SECURITY;
CREATE POLICY review_dishonesty_read ON review_dishonesty FOR SELECT USING (true);
CREATE POLICY review_dishonesty_region ON review_dishonesty
    USING (creditmesh_region_scope()) WITH CHECK (creditmesh_region_scope());
